"""Where the app is installed, as Discord models it: to a server (guild install) or to a member's
account (user install), which follows them into the bot's DM, group DMs and servers without the
bot. A real discord.py client reads each interaction's ``context`` and
``authorizing_integration_owners``; commands declare ``integration_types`` and ``contexts`` with
discord.py's own decorators, and what they do not allow is refused as the client would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import pytest
from discord import app_commands

from sandbox import Emulator, Interaction
from tests.sandbox.clients import Recorded, TreeClient, running

SHARD_UNIT = 1 << 22  # the guild id k * SHARD_UNIT belongs to shard k % shard_count
DM_APP_PERMISSIONS = 442368  # attach files, embed links, mention everyone, external emojis
MENTION_EVERYONE = discord.Permissions(mention_everyone=True).value


class Again(Recorded, discord.ui.View):
    def __init__(self, client: Client) -> None:
        super().__init__(timeout=None)
        self.client = client

    @discord.ui.button(label="Again", custom_id="again")
    async def again(
        self, interaction: discord.Interaction, button: discord.ui.Button[Again]
    ) -> None:
        await self.client.heard.put(interaction)
        await interaction.response.send_message("again", ephemeral=True)


class Note(Recorded, discord.ui.Modal, title="A note"):
    text: discord.ui.TextInput[Note] = discord.ui.TextInput(label="Note", custom_id="text")

    def __init__(self, client: Client) -> None:
        super().__init__(custom_id="note")
        self.client = client

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.client.heard.put(interaction)
        await interaction.response.send_message("noted", ephemeral=True)


class Client(TreeClient):
    """A bot whose commands are installed in different ways; it keeps what it heard."""

    def __init__(self, *, shard: tuple[int, int] | None = None) -> None:
        shard_id, shard_count = shard or (None, None)
        super().__init__(shard_id=shard_id, shard_count=shard_count)
        self.heard: asyncio.Queue[discord.Interaction] = asyncio.Queue()
        tree = self.tree

        @tree.command(name="everywhere", description="Installed both ways, usable anywhere")
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def everywhere(interaction: discord.Interaction) -> None:
            await self.heard.put(interaction)
            await interaction.response.send_message("here", view=Again(self))

        @tree.command(name="mine", description="Only through a user install")
        @app_commands.allowed_installs(guilds=False, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def mine(interaction: discord.Interaction) -> None:
            await self.heard.put(interaction)
            await interaction.response.send_message("yours", ephemeral=True)

        @tree.command(name="note", description="Opens a form, through a user install")
        @app_commands.allowed_installs(guilds=False, users=True)
        async def note(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(Note(self))

        @tree.command(name="server", description="The default: a guild install")
        async def server(interaction: discord.Interaction) -> None:
            await self.heard.put(interaction)
            await interaction.response.send_message("server", ephemeral=True)

        @tree.command(name="dms", description="A user install, in DMs only")
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=False, dms=True, private_channels=False)
        async def dms(interaction: discord.Interaction) -> None:
            await self.heard.put(interaction)
            await interaction.response.send_message("dm", ephemeral=True)


@dataclass
class World:
    guild: int  # the bot is in it
    general: int
    elsewhere: int  # a server without the bot
    outside: int  # its channel
    member: int
    friend: int


@pytest.fixture
def world(emu: Emulator) -> World:
    guild = emu.add_guild("With the bot")
    general = emu.add_text_channel(guild, "general")
    elsewhere = emu.add_guild("Without the bot", bot=False)
    outside = emu.add_text_channel(elsewhere, "chat")
    member, friend = emu.add_user("ada"), emu.add_user("bob")
    for server in (guild, elsewhere):
        emu.add_member(server, member)
        emu.add_member(server, friend)
    return World(guild, general, elsewhere, outside, member, friend)


@pytest.fixture
async def client(emu: Emulator, world: World) -> AsyncIterator[Client]:
    async with running(Client()) as client:
        await client.tree.sync()
        yield client


async def heard(client: Client, sent: Interaction) -> discord.Interaction:
    await sent.response()
    return await asyncio.wait_for(client.heard.get(), 5)


def where(sent: Interaction) -> tuple[int, dict[str, str]]:
    return sent.payload["context"], sent.payload["authorizing_integration_owners"]


async def test_commands_keep_their_installs_and_contexts(
    emu: Emulator, world: World, client: Client
) -> None:
    commands = {c["name"]: c for c in emu.registered_commands()}
    assert commands["everywhere"]["integration_types"] == [0, 1]
    assert commands["everywhere"]["contexts"] == [0, 1, 2]
    assert commands["mine"]["integration_types"] == [1]
    assert commands["server"]["integration_types"] == [0]
    assert commands["dms"]["contexts"] == [1]


async def test_a_guild_install_answers_in_its_servers_and_its_dms(
    emu: Emulator, world: World, client: Client
) -> None:
    sent = await emu.slash(world.member, "server", guild_id=world.guild)
    interaction = await heard(client, sent)
    assert where(sent) == (0, {"0": str(world.guild)})
    assert interaction.context.guild and interaction.is_guild_integration()
    assert not interaction.is_user_integration()

    sent = await emu.slash(world.member, "server")
    interaction = await heard(client, sent)
    assert where(sent) == (1, {"0": "0"})
    assert interaction.context.dm_channel and interaction.guild_id is None

    # Without a user install, user-install-only commands are not offered anywhere.
    for place in ({"guild_id": world.guild}, {}):
        with pytest.raises(PermissionError, match=r"integration_types are \[1\]"):
            await emu.slash(world.member, "mine", **place)
    assert emu.violations == []


async def test_a_user_install_reaches_a_server_without_the_bot(
    emu: Emulator, world: World, client: Client
) -> None:
    with pytest.raises(LookupError, match="install_for_user"):
        await emu.slash(world.member, "everywhere", channel_id=world.outside)

    emu.install_for_user(world.member)
    assert emu.installed_for_user(world.member)
    sent = await emu.slash(world.member, "everywhere", channel_id=world.outside)
    interaction = await heard(client, sent)
    assert where(sent) == (0, {"1": str(world.member)})
    assert interaction.is_user_integration() and not interaction.is_guild_integration()
    assert interaction.guild_id == world.elsewhere
    assert client.get_guild(world.elsewhere) is None  # the bot is not in it
    # What @everyone may do there, of what Discord grants an app outside its servers.
    assert int(sent.payload["app_permissions"]) == DM_APP_PERMISSIONS & ~MENTION_EVERYONE
    answer = await sent.message()
    assert answer["content"] == "here"
    assert answer["interaction_metadata"]["authorizing_integration_owners"] == {
        "1": str(world.member)
    }
    assert [m["content"] for m in emu.channel_messages(world.outside)] == ["here"]

    # Someone else pressing a button on it: still authorised by the member's install.
    pressed = await emu.click(world.friend, answer, "again")
    again = await heard(client, pressed)
    assert where(pressed) == (0, {"1": str(world.member)})
    assert again.user.id == world.friend and not again.is_user_integration()

    # A guild-install-only command is not there; nor may the bot post there on its own.
    with pytest.raises(PermissionError, match="integration_types"):
        await emu.slash(world.member, "server", channel_id=world.outside)
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=world.outside)
    with pytest.raises(discord.Forbidden) as caught:
        await client.http.request(route, json={"content": "hi"})
    assert caught.value.code == 50001

    # Both installs where the bot is: both owners.
    both = await emu.slash(world.member, "everywhere", guild_id=world.guild)
    await heard(client, both)
    assert where(both) == (0, {"0": str(world.guild), "1": str(world.member)})

    # A form opened there is submitted under the same install.
    opened = await emu.slash(world.member, "note", channel_id=world.outside)
    submitted = await emu.submit_modal(world.member, await opened.modal(), {"text": "hi"})
    await heard(client, submitted)
    assert where(submitted) == (0, {"1": str(world.member)})

    emu.uninstall_for_user(world.member)
    with pytest.raises(LookupError, match="install_for_user"):
        await emu.slash(world.member, "everywhere", channel_id=world.outside)
    assert emu.violations == []


async def test_a_user_install_in_the_bots_dm(emu: Emulator, world: World, client: Client) -> None:
    emu.install_for_user(world.member)
    sent = await emu.slash(world.member, "mine")
    interaction = await heard(client, sent)
    assert where(sent) == (1, {"1": str(world.member)})
    assert interaction.context.dm_channel and interaction.is_user_integration()

    sent = await emu.slash(world.member, "everywhere")
    await heard(client, sent)
    assert where(sent) == (1, {"0": "0", "1": str(world.member)})

    with pytest.raises(PermissionError, match="cannot be used in a server"):
        await emu.slash(world.member, "dms", guild_id=world.guild)
    assert emu.violations == []


async def test_a_user_install_in_a_group_dm(emu: Emulator, world: World, client: Client) -> None:
    group = emu.add_group_dm(world.member, [world.friend], name="study group")
    with pytest.raises(LookupError, match="group DM"):
        await emu.slash(world.member, "everywhere", channel_id=group)

    emu.install_for_user(world.member)
    sent = await emu.slash(world.member, "everywhere", channel_id=group)
    interaction = await heard(client, sent)
    assert where(sent) == (2, {"1": str(world.member)})
    assert interaction.context.private_channel
    assert isinstance(interaction.channel, discord.GroupChannel)
    assert interaction.channel.name == "study group"
    assert int(sent.payload["app_permissions"]) == DM_APP_PERMISSIONS
    assert (await sent.message())["content"] == "here"
    assert [m["content"] for m in emu.channel_messages(group)] == ["here"]

    with pytest.raises(PermissionError, match="cannot be used in a group DM"):
        await emu.slash(world.member, "dms", channel_id=group)
    # An out-of-date or forged client may send it all the same.
    forged = await emu.slash(world.member, "dms", channel_id=group, enforce_client_limits=False)
    await heard(client, forged)
    assert where(forged) == (2, {"1": str(world.member)})

    outsider = emu.add_user("eve")
    emu.install_for_user(outsider)
    with pytest.raises(LookupError, match="not in the group DM"):
        await emu.slash(outsider, "everywhere", channel_id=group)
    with pytest.raises(PermissionError):
        await emu.send_message(outsider, group, "let me in")
    await emu.send_message(world.friend, group, "the bot never hears this")
    assert emu.violations == []


async def test_a_server_without_the_bot_goes_to_the_shard_it_would_be_on(
    emu: Emulator,
) -> None:
    odd = emu.add_guild("Odd, without the bot", id=11 * SHARD_UNIT, bot=False)
    channel = emu.add_text_channel(odd, "chat")
    member = emu.add_user("ada")
    emu.add_member(odd, member)
    emu.install_for_user(member)
    async with running(Client(shard=(0, 2))) as zero, running(Client(shard=(1, 2))) as one:
        await emu.wait_until_ready(sessions=2)
        assert list(zero.guilds) == list(one.guilds) == []  # neither hears of the server
        await zero.tree.sync()
        sent = await emu.slash(member, "everywhere", channel_id=channel)
        assert (await heard(one, sent)).guild_id == odd
        assert zero.heard.empty()
