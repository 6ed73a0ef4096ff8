"""Servers as Discord runs them: roles, channel types, permission overwrites, what a member may
invoke, what the bot may post, who a message pings, and the bot leaving a server.

A real discord.py client proves the emulator and a client agree: what discord.py computes from
its cache (``permissions_for``) is what the emulator enforces, and what it reads in an
interaction (``permissions``, ``app_permissions``, resolved channels) is what Discord would send.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from discord import app_commands

from sandbox import Emulator, Interaction
from tests.sandbox.clients import TreeClient, failures_of, running

P = discord.Permissions
VIEW = P(view_channel=True).value
SEND = P(send_messages=True).value
EMBED = P(embed_links=True).value
ATTACH = P(attach_files=True).value
CONNECT = P(connect=True).value
MENTION_EVERYONE = P(mention_everyone=True).value
COMMANDS = P(use_application_commands=True).value
ADMINISTRATOR = P(administrator=True).value
MANAGE_GUILD = P(manage_guild=True).value
DM_APP_PERMISSIONS = 442368  # attach files, embed links, mention everyone, external emojis


class Client(TreeClient):
    """A bot with a few commands that keeps each interaction and guild event it hears."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: asyncio.Queue[discord.Interaction] = asyncio.Queue()
        self.updated: asyncio.Queue[discord.abc.GuildChannel] = asyncio.Queue()
        self.removed: asyncio.Queue[discord.Guild] = asyncio.Queue()
        tree = self.tree

        async def answer(interaction: discord.Interaction, text: str = "ok") -> None:
            await self.heard.put(interaction)
            await interaction.response.send_message(text, ephemeral=True)

        @tree.command(name="where", description="Anyone, anywhere")
        async def where(interaction: discord.Interaction) -> None:
            await answer(interaction)

        @tree.command(name="config", description="Moderators only, in a server")
        @app_commands.guild_only()
        @app_commands.default_permissions(manage_guild=True)
        async def config(
            interaction: discord.Interaction, channel: discord.TextChannel, note: str = ""
        ) -> None:
            await answer(interaction, f"#{channel.name} {note}")

        @config.autocomplete("note")
        async def notes(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return []

        @tree.command(name="admin", description="Administrators only")
        @app_commands.default_permissions()
        async def admin(interaction: discord.Interaction) -> None:
            await answer(interaction)

        @tree.command(name="private", description="Only in the bot's DMs")
        @app_commands.dm_only()
        async def private(interaction: discord.Interaction) -> None:
            await answer(interaction)

        @tree.command(name="shout", description="Answers with mentions")
        async def shout(interaction: discord.Interaction, text: str) -> None:
            await interaction.response.send_message(text)

    async def on_guild_channel_update(
        self, before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        await self.updated.put(after)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.removed.put(guild)


@dataclass
class World:
    guild: int
    general: int
    news: int
    voice: int
    category: int
    inner: int  # a text channel in the category
    member: int
    moderator: int
    admin: int
    other: int  # another server, with the member in it too
    elsewhere: int  # its channel
    bot: int


@pytest.fixture
def world(emu: Emulator) -> World:
    guild = emu.add_guild("Test Server")
    general = emu.add_text_channel(guild, "general")
    news = emu.add_channel(guild, "news", type=5)
    voice = emu.add_channel(guild, "Lounge", type=2)
    category = emu.add_channel(guild, "Quiet", type=4)
    inner = emu.add_channel(guild, "inner", parent_id=category)
    member, moderator, admin = (emu.add_user(n) for n in ("ada", "mod", "root"))
    emu.add_member(guild, member)
    emu.add_member(guild, moderator, manage_guild=True)
    emu.add_member(guild, admin, roles=[emu.add_role(guild, "Admins", permissions=ADMINISTRATOR)])
    other = emu.add_guild("Other Server")
    elsewhere = emu.add_text_channel(other, "general")
    emu.add_member(other, member)
    return World(
        guild, general, news, voice, category, inner, member, moderator, admin, other, elsewhere,
        emu.application_id,
    )  # fmt: skip


@pytest.fixture
async def client(emu: Emulator, world: World) -> AsyncIterator[Client]:
    async with running(Client()) as client:
        await client.tree.sync()
        yield client


async def until(condition: Callable[[], object]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the client's cache never caught up")


async def refused_by_the_bot(client: Client, kind: type[Exception]) -> None:
    """The toy bot failing on what a forged client sent: expected, so taken off its
    ``failures`` (which would fail the test)."""
    await until(lambda: failures_of(client))
    error = failures_of(client).pop(0)
    assert isinstance(error, kind), error


async def updates(client: Client, count: int) -> None:
    """Wait for ``count`` CHANNEL_UPDATEs to reach the client's cache."""
    for _ in range(count):
        await asyncio.wait_for(client.updated.get(), 5)


def as_a_client_sees_it(raw: int, channel: discord.abc.GuildChannel) -> int:
    """The computed value (what interactions carry) less what a client takes as implied:
    Discord's documented implicit denials (Permissions, "Implicit Permissions") and, by the
    channel types column of its permission table, no voice permissions in a text channel."""
    if isinstance(channel, discord.TextChannel):
        raw &= ~P.voice().value
    if not raw & SEND:
        raw &= ~(P(send_tts_messages=True).value | MENTION_EVERYONE | EMBED | ATTACH)
    if not raw & VIEW:
        raw &= ~P.all_channel().value
    if isinstance(channel, discord.VoiceChannel) and not raw & CONNECT:
        raw &= ~(P.voice().value | P(manage_channels=True, manage_roles=True).value)
    return raw


# --- permissions ---------------------------------------------------------------------------


def test_permissions_follow_discords_documented_order(emu: Emulator, world: World) -> None:
    everyone, mods = world.guild, emu.moderators_role_id(world.guild)
    assert emu.permissions(world.member, world.general) & (VIEW | SEND) == VIEW | SEND
    assert not emu.permissions(world.member, world.general) & MANAGE_GUILD
    assert emu.permissions(world.moderator, world.general) & MANAGE_GUILD

    emu.set_permissions(world.general, everyone, deny=VIEW)
    emu.set_permissions(world.general, mods, allow=VIEW)
    assert not emu.permissions(world.member, world.general) & VIEW  # @everyone's overwrite
    assert emu.permissions(world.moderator, world.general) & VIEW  # roles come after it
    emu.set_permissions(world.general, world.moderator, deny=VIEW)
    assert not emu.permissions(world.moderator, world.general) & VIEW  # the member's own last
    emu.set_permissions(world.general, world.member, allow=VIEW)
    assert emu.permissions(world.member, world.general) & VIEW

    # Roles' overwrites are combined before they apply: one role's allow beats another's deny,
    # whichever comes first.
    helpers = emu.add_role(world.guild, "Helpers")
    emu.add_member(world.guild, world.moderator, manage_guild=True, roles=[helpers])
    emu.set_permissions(world.general, world.moderator)  # nothing allowed or denied: removed
    emu.set_permissions(world.general, helpers, allow=VIEW)
    emu.set_permissions(world.general, mods, deny=VIEW | SEND)
    assert emu.permissions(world.moderator, world.general) & (VIEW | SEND) == VIEW

    # Administrators and the owner hold everything, overwrites or not.
    emu.set_permissions(world.general, everyone, deny=VIEW | SEND | CONNECT)
    assert emu.permissions(world.admin, world.general) == P.all().value
    assert emu.permissions(world.admin, world.general) & ADMINISTRATOR


async def test_discord_py_computes_from_its_cache_what_the_emulator_enforces(
    emu: Emulator, world: World, client: Client
) -> None:
    guild = client.get_guild(world.guild)
    assert guild is not None and guild.me is not None
    assert guild.owner_id not in (world.bot, world.member)
    roles = {r.name: r for r in guild.roles}
    assert roles["Crossroads"].id == emu.bot_role_id(world.guild)
    assert roles["Crossroads"].is_bot_managed() and roles["Crossroads"] in guild.me.roles
    assert roles["Moderators"].id == emu.moderators_role_id(world.guild)
    assert roles["Moderators"].permissions.manage_guild
    assert isinstance(guild.get_channel(world.voice), discord.VoiceChannel)
    assert isinstance(guild.get_channel(world.news), discord.TextChannel)
    inner = guild.get_channel(world.inner)
    assert inner is not None and inner.category_id == world.category

    bot_role, mods, everyone = (
        emu.bot_role_id(world.guild),
        emu.moderators_role_id(world.guild),
        world.guild,
    )
    scenarios: list[list[tuple[int, int, int, int]]] = [  # (channel, target, allow, deny)
        [],
        [(world.general, everyone, 0, VIEW), (world.voice, everyone, 0, VIEW)],
        [(world.general, everyone, 0, VIEW), (world.general, bot_role, VIEW, 0)],
        [(world.general, bot_role, 0, SEND), (world.news, everyone, 0, SEND)],
        [(world.general, bot_role, 0, SEND), (world.general, world.bot, SEND, 0)],
        [(world.general, everyone, 0, EMBED | ATTACH), (world.voice, bot_role, 0, CONNECT)],
        [(world.general, world.bot, 0, VIEW), (world.general, bot_role, VIEW | SEND, 0)],
        [(world.news, mods, VIEW, 0), (world.news, everyone, 0, VIEW)],
    ]  # fmt: skip
    messageable = (world.general, world.news, world.voice, world.inner)
    targets = (everyone, bot_role, world.bot, mods)
    for scenario in scenarios:
        for channel_id in messageable:  # back to no overwrites at all
            for target in targets:
                emu.set_permissions(channel_id, target)
        for channel_id, target, allow, deny in scenario:
            emu.set_permissions(channel_id, target, allow=allow, deny=deny)
        await updates(client, len(messageable) * len(targets) + len(scenario))
        for channel_id in (*messageable, world.category):
            channel = guild.get_channel(channel_id)
            assert channel is not None
            raw = emu.permissions(world.bot, channel_id)
            seen = channel.permissions_for(guild.me)
            assert seen.value == as_a_client_sees_it(raw, channel), (scenario, channel.name)
            if channel_id == world.category:
                continue
            assert isinstance(channel, discord.TextChannel | discord.VoiceChannel)
            # CONNECT gates a voice channel the way VIEW_CHANNEL gates any: discord.py still
            # reports send_messages there, so a bot must look at connect too.
            reachable = seen.view_channel and (channel_id != world.voice or seen.connect)
            try:
                sent = await channel.send("hello", embed=discord.Embed(title="t"))
            except discord.Forbidden as refused:
                expected = 50013 if reachable else 50001
                assert refused.code == expected, (scenario, channel.name)
                assert not (reachable and seen.send_messages), (scenario, channel.name)
            else:
                assert reachable and seen.send_messages, (scenario, channel.name)
                assert bool(sent.embeds) == seen.embed_links, (scenario, channel.name)
    assert emu.violations == []  # Discord refusing the bot is no violation


# --- channels ---------------------------------------------------------------------------------


async def test_channels_are_created_updated_and_deleted_in_the_clients_cache(
    emu: Emulator, world: World, client: Client
) -> None:
    guild = client.get_guild(world.guild)
    assert guild is not None
    later = emu.add_channel(world.guild, "later", type=2, parent_id=world.category)
    await until(lambda: isinstance(guild.get_channel(later), discord.VoiceChannel))
    assert [c.id for c in guild.categories[0].channels] == [world.inner, later]

    # REST answers carry the same roles, types and overwrites as the gateway did.
    emu.set_permissions(world.category, emu.bot_role_id(world.guild), deny=ATTACH)
    fetched = await client.fetch_channel(world.inner)
    assert isinstance(fetched, discord.TextChannel) and fetched.category_id == world.category
    assert (
        fetched.overwrites_for(discord.Object(emu.bot_role_id(world.guild))).attach_files is False
    )
    kinds = {c.id: c.type.value for c in await guild.fetch_channels()}
    assert kinds == {
        world.general: 0, world.news: 5, world.voice: 2, world.category: 4, world.inner: 0, later: 2
    }  # fmt: skip
    assert "Moderators" in [r.name for r in (await client.fetch_guild(world.guild)).roles]

    emu.delete_channel(world.general)
    await until(lambda: guild.get_channel(world.general) is None)
    with pytest.raises(discord.NotFound) as caught:
        await client.fetch_channel(world.general)
    assert caught.value.code == 10003
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=world.general)
    with pytest.raises(discord.NotFound):
        await client.http.request(route, json={"content": "still there?"})

    # A deleted category's channels stay, without a parent.
    emu.delete_channel(world.category)
    await until(lambda: not guild.categories)
    await until(lambda: all(c.category_id is None for c in guild.channels))
    assert {c.id for c in guild.channels} == {world.news, world.voice, world.inner, later}
    assert emu.violations == []


def test_a_channel_starts_synced_with_its_category_and_follows_it_while_synced(
    emu: Emulator, world: World
) -> None:
    everyone = world.guild
    emu.set_permissions(world.category, everyone, deny=VIEW)
    assert not emu.permissions(world.member, world.inner) & VIEW  # was synced: follows
    later = emu.add_channel(world.guild, "later", parent_id=world.category)
    assert not emu.permissions(world.member, later) & VIEW  # starts with the category's
    emu.set_permissions(later, world.member, allow=VIEW)  # no longer synced
    emu.set_permissions(world.category, everyone)
    assert emu.permissions(world.member, world.inner) & VIEW
    assert emu.permissions(world.member, later) & VIEW
    emu.set_permissions(world.category, everyone, deny=SEND)
    assert emu.permissions(world.member, world.inner) & SEND == 0
    assert emu.permissions(world.member, later) & SEND  # left alone

    with pytest.raises(ValueError, match="no category"):
        emu.add_channel(world.guild, "nested", parent_id=world.general)
    with pytest.raises(ValueError, match="channel type"):
        emu.add_channel(world.guild, "forum", type=15)
    with pytest.raises(LookupError):
        emu.set_permissions(world.general, 12345, deny=VIEW)


async def test_posting_is_refused_as_discord_refuses_it(
    emu: Emulator, world: World, client: Client
) -> None:
    general = client.get_channel(world.general)
    voice = client.get_channel(world.voice)
    assert isinstance(general, discord.TextChannel) and isinstance(voice, discord.VoiceChannel)
    bot_role = emu.bot_role_id(world.guild)

    emu.set_permissions(world.general, bot_role, deny=EMBED | ATTACH)
    plain = await general.send("words", embed=discord.Embed(title="dropped"))
    assert plain.content == "words" and plain.embeds == []
    sent = [r.json for r in emu.requests if r.method == "POST" and r.json]
    assert sent[-1]["embeds"][0]["title"] == "dropped"  # recorded as the bot sent it
    with pytest.raises(discord.Forbidden) as caught:
        await general.send(embed=discord.Embed(title="nothing else"))
    assert caught.value.code == 50013
    with pytest.raises(discord.Forbidden) as caught:
        await general.send("a file", file=discord.File(io.BytesIO(b"x"), "x.txt"))
    assert caught.value.code == 50013

    # Text in voice: CONNECT gates a voice channel as VIEW_CHANNEL gates the others.
    assert (await voice.send("in voice")).content == "in voice"
    emu.set_permissions(world.voice, bot_role, deny=CONNECT)
    with pytest.raises(discord.Forbidden) as caught:
        await voice.send("no more")
    assert caught.value.code == 50001

    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=world.category)
    with pytest.raises(discord.HTTPException) as raw:
        await client.http.request(route, json={"content": "into a category"})
    assert raw.value.status == 400 and raw.value.code == 50008
    assert [m["content"] for m in emu.channel_messages(world.general)] == ["words"]
    assert emu.violations == []


# --- interactions ---------------------------------------------------------------------------


async def test_interactions_carry_the_members_and_the_bots_permissions_in_the_channel(
    emu: Emulator, world: World, client: Client
) -> None:
    emu.set_permissions(world.general, world.guild, deny=EMBED)
    emu.set_permissions(world.general, emu.moderators_role_id(world.guild), allow=EMBED)
    emu.set_permissions(world.general, emu.bot_role_id(world.guild), deny=ATTACH)
    sent = await emu.slash(world.moderator, "where", channel_id=world.general)
    interaction = await asyncio.wait_for(client.heard.get(), 5)
    assert interaction.permissions.value == emu.permissions(world.moderator, world.general)
    assert interaction.permissions.embed_links and interaction.permissions.manage_guild
    assert interaction.app_permissions.value == emu.permissions(world.bot, world.general)
    assert not interaction.app_permissions.attach_files
    assert not interaction.app_permissions.embed_links  # @everyone's deny hits the bot too
    assert isinstance(interaction.user, discord.Member)
    assert [r.name for r in interaction.user.roles] == ["@everyone", "Moderators"]

    from_dm = await emu.slash(world.member, "where")  # in the bot's DM
    in_dm = await asyncio.wait_for(client.heard.get(), 5)
    assert in_dm.guild_id is None and in_dm.app_permissions.value == DM_APP_PERMISSIONS
    for each in (sent, from_dm):  # the handler answers after it noted the interaction
        await each.message()
    assert emu.violations == []


async def test_a_channel_option_offers_what_the_client_would_and_resolves_it(
    emu: Emulator, world: World, client: Client
) -> None:
    emu.allow_command(world.guild, "config", world.member)

    async def config(channel: object, *, enforce: bool = True) -> Interaction:
        options = {"channel": channel}
        return await emu.slash(
            world.member,
            "config",
            options=options,
            guild_id=world.guild,
            enforce_client_limits=enforce,
        )

    assert (await (await config("#news")).message())["content"] == "#news "  # announcement
    sent = await config(world.inner)
    assert (await sent.message())["content"] == "#inner "
    entry = sent.payload["data"]["resolved"]["channels"][str(world.inner)]
    assert entry["parent_id"] == str(world.category) and entry["type"] == 0
    assert entry["name"] == "inner" and entry["guild_id"] == str(world.guild)
    assert int(entry["permissions"]) == emu.permissions(world.member, world.inner)
    assert int(entry["app_permissions"]) == emu.permissions(world.bot, world.inner)
    assert "permission_overwrites" not in entry

    # The picker would not offer these (channel_types [0, 5]; another server; hidden).
    emu.set_permissions(world.inner, world.member, deny=VIEW)
    refused = {"#Lounge": "voice channel", world.elsewhere: "not a channel of this server"}
    refused[world.inner] = "cannot see #inner"
    for channel, why in refused.items():
        with pytest.raises(ValueError, match=why):
            await config(channel)
    forged = await config(world.voice, enforce=False)  # sent as a forged client would
    entry = forged.payload["data"]["resolved"]["channels"][str(world.voice)]
    assert entry["type"] == 2 and int(entry["permissions"]) & CONNECT
    await refused_by_the_bot(client, app_commands.TransformerError)  # not a TextChannel
    assert emu.violations == []


async def test_contexts_decide_where_a_command_can_be_used(
    emu: Emulator, world: World, client: Client
) -> None:
    with pytest.raises(PermissionError, match="in the bot's DMs"):
        await emu.slash(world.moderator, "config", options={"channel": world.general})
    with pytest.raises(PermissionError, match="in a server"):
        await emu.slash(world.member, "private", guild_id=world.guild)
    await (await emu.slash(world.member, "private")).message()  # in the DM: fine
    await (await emu.slash(world.member, "where", guild_id=world.guild)).message()
    await (await emu.slash(world.member, "where")).message()

    # An out-of-date or forged client may still send it; the bot must cope.
    forged = await emu.slash(
        world.moderator,
        "config",
        options={"channel": world.general},
        enforce_client_limits=False,
    )
    assert forged.payload["context"] == 1 and "guild_id" not in forged.payload
    await refused_by_the_bot(client, app_commands.TransformerError)  # no channel in a DM

    # Without contexts, the legacy dm_permission decides.
    route = discord.http.Route(
        "POST", "/applications/{application_id}/commands", application_id=world.bot
    )
    legacy = {"name": "legacy", "description": "Old style", "dm_permission": False}
    await client.http.request(route, json=legacy)
    with pytest.raises(PermissionError, match="in the bot's DMs"):
        await emu.slash(world.member, "legacy")
    await emu.slash(world.member, "legacy", guild_id=world.guild)
    await refused_by_the_bot(client, app_commands.CommandNotFound)  # not in the toy's tree
    assert emu.violations == []


async def test_default_member_permissions_decide_who_can_use_a_command(
    emu: Emulator, world: World, client: Client
) -> None:
    async def config(user_id: int) -> Interaction:
        options = {"channel": world.general}
        return await emu.slash(user_id, "config", options=options, guild_id=world.guild)

    with pytest.raises(PermissionError, match="default_member_permissions"):
        await config(world.member)
    with pytest.raises(PermissionError, match="default_member_permissions"):
        await emu.autocomplete(
            world.member, "config", focused="note", value="n", guild_id=world.guild
        )
    await config(world.moderator)
    await config(world.admin)

    # "0": nobody but administrators.
    with pytest.raises(PermissionError):
        await emu.slash(world.moderator, "admin", guild_id=world.guild)
    await emu.slash(world.admin, "admin", guild_id=world.guild)
    await emu.slash(world.member, "admin")  # in DMs there are no server permissions

    # A server may let one member use it anyway; the bot then has to check for itself.
    emu.allow_command(world.guild, "config", world.member)
    allowed = await config(world.member)
    assert not int(allowed.payload["member"]["permissions"]) & MANAGE_GUILD
    with pytest.raises(PermissionError):
        await emu.slash(world.member, "admin", guild_id=world.guild)

    # Nobody uses commands where they cannot see, or may not use commands.
    emu.set_permissions(world.news, world.guild, deny=COMMANDS)
    with pytest.raises(PermissionError, match="cannot use commands"):
        await emu.slash(world.member, "where", channel_id=world.news)
    for _ in range(5):
        await asyncio.wait_for(client.heard.get(), 5)
    assert emu.violations == []


# --- mentions -------------------------------------------------------------------------------


async def test_mentions_are_worked_out_as_discord_does(
    emu: Emulator, world: World, client: Client
) -> None:
    general = client.get_channel(world.general)
    assert isinstance(general, discord.TextChannel)
    mods = emu.moderators_role_id(world.guild)
    text = f"<@{world.member}> <@!{world.moderator}> <@&{mods}> <@123> @everyone"

    def pinged(message: dict[str, Any]) -> tuple[list[str], list[str], bool]:
        users = [u["id"] for u in message["mentions"]]
        return users, message["mention_roles"], message["mention_everyone"]

    await general.send(text)  # no allowed_mentions: a plain message parses everything
    assert "allowed_mentions" not in emu.requests[-1].json
    posted = emu.channel_messages(world.general)[-1]
    # ... but the bot lacks MENTION_EVERYONE: no @everyone, no unmentionable role.
    assert pinged(posted) == ([str(world.member), str(world.moderator)], [], False)
    assert posted["mentions"][0]["member"]["roles"] == []
    assert posted["mentions"][1]["member"]["roles"] == [str(mods)]

    emu.set_permissions(world.general, emu.bot_role_id(world.guild), allow=MENTION_EVERYONE)
    await general.send(text)
    assert pinged(emu.channel_messages(world.general)[-1]) == (
        [str(world.member), str(world.moderator)],
        [str(mods)],
        True,
    )
    quiet = await general.send(text, allowed_mentions=discord.AllowedMentions.none())
    assert emu.requests[-1].json["allowed_mentions"] == {"parse": []}
    assert pinged(emu.channel_messages(world.general)[-1]) == ([], [], False)
    only = discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(world.member)]
    )
    await general.send(text, allowed_mentions=only)
    assert pinged(emu.channel_messages(world.general)[-1]) == ([str(world.member)], [], False)

    # An edit works mentions out afresh, with the default when it names none.
    await quiet.edit(content=f"<@{world.member}>")
    assert pinged(emu.channel_messages(world.general)[2]) == ([str(world.member)], [], False)

    # An interaction's answer parses only users by default.
    answer = await emu.slash(world.member, "shout", options={"text": text}, guild_id=world.guild)
    assert pinged(await answer.message()) == ([str(world.member), str(world.moderator)], [], False)

    # Naming users both ways at once is refused, as Discord refuses it.
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=world.general)
    both = {"parse": ["users"], "users": [str(world.member)]}
    with pytest.raises(discord.HTTPException) as caught:
        await client.http.request(route, json={"content": text, "allowed_mentions": both})
    assert caught.value.code == 50035
    assert [v.rule for v in emu.violations] == ["limits"]


# --- leaving a server -----------------------------------------------------------------------


async def test_a_bot_removed_from_a_server_hears_so_and_is_refused_there(
    emu: Emulator, world: World, client: Client
) -> None:
    general = client.get_channel(world.general)
    assert isinstance(general, discord.TextChannel)
    emu.remove_guild(world.guild)
    removed = await asyncio.wait_for(client.removed.get(), 5)
    assert removed.id == world.guild and client.get_guild(world.guild) is None

    for call in (
        lambda: general.send("anyone?"),
        lambda: client.fetch_channel(world.general),
        lambda: client.fetch_guild(world.guild),
        lambda: client.tree.sync(guild=discord.Object(world.guild)),
    ):
        with pytest.raises(discord.Forbidden) as caught:
            await call()
        assert caught.value.code == 50001
    with pytest.raises(LookupError, match="not in guild"):
        await emu.slash(world.member, "where", guild_id=world.guild)
    with pytest.raises(ValueError):
        emu.remove_guild(world.guild)

    # The other server is untouched, and a new session is not told of the old one.
    await emu.slash(world.member, "where", channel_id=world.elsewhere)
    await asyncio.wait_for(client.heard.get(), 5)
    async with running(Client()) as fresh:
        assert [g.id for g in fresh.guilds] == [world.other]
    assert emu.violations == []
