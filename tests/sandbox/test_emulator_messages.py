"""Members' messages in servers as a bot hears them, and the bot's replies, driven by real
discord.py clients over real HTTP and websocket: who is sent MESSAGE_CREATE (intents, shards,
channel access), what a session without Message Content reads (only what mentions the bot, and
DMs), replies and who they ping, and the counts that prove nothing was posted twice.

discord.py swallows exceptions raised in its event handlers, so the clients only collect what
they heard (queues) and the tests assert in their own body.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import discord
import pytest

from sandbox import Emulator
from tests.sandbox.clients import KeepsFailures, running

SHARD_UNIT = 1 << 22  # the guild id k * SHARD_UNIT belongs to shard k % shard_count
READ_HISTORY = discord.Permissions(read_message_history=True).value
VIEW = discord.Permissions(view_channel=True).value


class Listener(KeepsFailures, discord.Client):
    """A bot that hears server messages (and DMs), with or without Message Content, and keeps
    both the messages discord.py built and the raw MESSAGE_CREATE payloads."""

    def __init__(
        self,
        *,
        guild_messages: bool = True,
        content: bool = False,
        shard: tuple[int, int] | None = None,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = intents.dm_messages = True
        intents.guild_messages = guild_messages
        intents.message_content = content
        shard_id, shard_count = shard or (None, None)
        super().__init__(
            intents=intents,
            guild_ready_timeout=0.05,
            enable_debug_events=True,
            shard_id=shard_id,
            shard_count=shard_count,
        )
        self.heard: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.raw: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.joined: asyncio.Queue[discord.Guild] = asyncio.Queue()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py waits 5 s before re-identifying; the emulator has no limit

    async def on_message(self, message: discord.Message) -> None:
        await self.heard.put(message)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.joined.put(guild)

    async def on_socket_raw_receive(self, text: str) -> None:
        event = json.loads(text)
        if event.get("t") == "MESSAGE_CREATE":
            await self.raw.put(event["d"])

    async def next(self) -> tuple[discord.Message, dict[str, Any]]:
        message = await asyncio.wait_for(self.heard.get(), 5)
        return message, await asyncio.wait_for(self.raw.get(), 5)


@dataclass
class World:
    guild: int
    general: int
    hidden: int  # a channel the bot cannot see
    member: int
    other: int  # another member


@pytest.fixture
def world(emu: Emulator) -> World:
    guild = emu.add_guild("Test Server")
    general = emu.add_text_channel(guild, "general")
    hidden = emu.add_text_channel(guild, "staff")
    emu.set_permissions(hidden, emu.application_id, deny=VIEW)
    member, other = emu.add_user("ada"), emu.add_user("bob")
    emu.add_member(guild, member)
    emu.add_member(guild, other)
    return World(guild, general, hidden, member, other)


async def nothing_more(client: Listener, emu: Emulator) -> None:
    """No MESSAGE_CREATE is on its way to ``client``: one websocket keeps its order, so a
    server the client hears of after everything sent before proves it."""
    emu.add_guild("Marker")
    await asyncio.wait_for(client.joined.get(), 5)
    assert client.heard.empty()


# --- mentions and Message Content -----------------------------------------------------------


async def test_a_mention_arrives_with_content_and_the_shape_discord_sends(
    emu: Emulator, world: World
) -> None:
    async with running(Listener()) as bot:
        assert bot.user is not None
        sent = await emu.mention_bot(world.member, world.general, "should I do a PhD?")
        message, raw = await bot.next()

        assert sent["content"] == f"<@{emu.bot_user_id}> should I do a PhD?"
        assert message.content == sent["content"]
        assert message.id == int(sent["id"]) and message.channel.id == world.general
        assert message.guild is not None and message.guild.id == world.guild
        assert isinstance(message.author, discord.Member) and message.author.id == world.member
        assert bot.user in message.mentions and message.type == discord.MessageType.default
        assert not message.author.bot and message.webhook_id is None

        assert raw["guild_id"] == str(world.guild) and raw["type"] == 0
        assert raw["channel_id"] == str(world.general) and raw["timestamp"]
        assert "user" not in raw["member"] and raw["member"]["roles"] == []
        assert [m["id"] for m in raw["mentions"]] == [str(emu.bot_user_id)]
        assert "user" not in raw["mentions"][0]["member"]  # a mentioned member is partial too
        assert "allowed_mentions" not in raw

        # The older nickname form mentions the bot just as well.
        assert isinstance(message.channel, discord.TextChannel)
        await emu.mention_bot(world.member, world.general, "hello", nickname_form=True)
        message, _ = await bot.next()
        assert message.content == f"<@!{emu.bot_user_id}> hello"
        assert bot.user in message.mentions
    assert emu.channel_messages(world.general)[0] == sent
    assert emu.violations == []


async def test_without_message_content_only_mentions_and_dms_carry_content(
    emu: Emulator, world: World
) -> None:
    async with running(Listener()) as bot:
        await emu.send_message(world.member, world.general, "just chatting **here**")
        message, raw = await bot.next()
        assert message.content == "" and message.author.id == world.member
        assert (raw["content"], raw["embeds"], raw["attachments"], raw["components"]) == (
            "",
            [],
            [],
            [],
        )

        # Mentioning someone else is no mention of the bot.
        await emu.send_message(world.member, world.general, f"<@{world.other}> look")
        message, raw = await bot.next()
        assert message.content == "" and [u.id for u in message.mentions] == [world.other]

        dm = await emu.send_dm(world.member, "a DM needs no intent")
        message, raw = await bot.next()
        assert message.content == "a DM needs no intent" and message.guild is None
        assert "guild_id" not in raw and "member" not in raw
        assert raw["author"]["id"] == str(world.member) and raw["id"] == dm["id"]
        assert set(raw) >= {"mentions", "timestamp", "channel_id", "type", "id"}

    # Everyone else in the channel saw it all: the emulator keeps it whole.
    assert emu.channel_messages(world.general)[0]["content"] == "just chatting **here**"


async def test_message_content_intent_reads_everything(emu: Emulator, world: World) -> None:
    async with running(Listener(content=True)) as bot:
        await emu.send_message(world.member, world.general, "no mention at all")
        message, _ = await bot.next()
        assert message.content == "no mention at all"


async def test_who_is_sent_server_messages(emu: Emulator, world: World) -> None:
    """GUILD_MESSAGES is needed for server messages (DMs need DIRECT_MESSAGES instead); a
    channel the bot cannot see sends it nothing."""
    async with running(Listener(guild_messages=False)) as deaf, running(Listener()) as hearing:
        await emu.mention_bot(world.member, world.hidden, "psst")
        await emu.mention_bot(world.member, world.general, "hello")
        message, _ = await hearing.next()
        assert message.content.endswith("hello")  # not the hidden channel's
        await nothing_more(deaf, emu)
        await emu.send_dm(world.member, "dm")
        assert (await deaf.next())[0].content == "dm"
    assert len(emu.channel_messages(world.hidden)) == 1


async def test_server_messages_go_to_the_shard_that_owns_the_server(emu: Emulator) -> None:
    odd = emu.add_guild("Odd", id=11 * SHARD_UNIT)
    channel = emu.add_text_channel(odd, "general")
    member = emu.add_user("ada")
    emu.add_member(odd, member)
    async with running(Listener(shard=(0, 2))) as zero, running(Listener(shard=(1, 2))) as one:
        await emu.wait_until_ready(sessions=2)
        await emu.mention_bot(member, channel, "which shard?")
        message, _ = await one.next()
        assert message.guild is not None and message.guild.id == odd
        await emu.send_dm(member, "DMs go to shard 0")
        assert (await zero.next())[0].content == "DMs go to shard 0"
        assert zero.heard.empty() and one.heard.empty()


async def test_members_must_be_able_to_post(emu: Emulator, world: World) -> None:
    stranger = emu.add_user("stranger")
    with pytest.raises(LookupError, match="not a member"):
        await emu.send_message(stranger, world.general, "hi")
    deny = discord.Permissions(send_messages=True).value
    emu.set_permissions(world.general, world.other, deny=deny)
    with pytest.raises(PermissionError, match="may not post"):
        await emu.send_message(world.other, world.general, "hi")
    with pytest.raises(PermissionError, match="another member's DM"):
        await emu.send_message(world.other, emu.dm_channel_id(world.member), "hi")
    assert emu.channel_messages(world.general) == []


# --- webhooks, other bots, system messages ------------------------------------------------


async def test_webhooks_bots_and_system_messages_are_told_apart(
    emu: Emulator, world: World
) -> None:
    other_bot = emu.add_user("Helper", bot=True)
    emu.add_member(world.guild, other_bot)
    async with running(Listener(content=True)) as bot:
        hooked = await emu.send_webhook_message(
            world.general, f"<@{emu.bot_user_id}> from a hook", username="Feeds"
        )
        message, raw = await bot.next()
        assert message.webhook_id == int(hooked["webhook_id"]) and message.author.bot
        assert message.author.name == "Feeds" and "member" not in raw

        await emu.mention_bot(other_bot, world.general, "bot to bot")
        message, raw = await bot.next()
        assert message.author.bot and isinstance(message.author, discord.Member)
        assert message.webhook_id is None

        await emu.send_message(world.other, world.general, type=7)  # bob joined
        message, raw = await bot.next()
        assert message.type == discord.MessageType.new_member and message.is_system()
        assert raw["type"] == 7
    # The same webhook posts under the same id each time.
    again = await emu.send_webhook_message(world.general, "again", username="Feeds")
    assert again["webhook_id"] == hooked["webhook_id"]


# --- replies --------------------------------------------------------------------------------


async def test_the_bot_replies_and_its_reply_pings_as_allowed_mentions_say(
    emu: Emulator, world: World
) -> None:
    async with running(Listener()) as bot:
        asked = await emu.mention_bot(world.member, world.general, "what fits me?")
        message, _ = await bot.next()

        replies = [
            await message.reply("pings you"),  # no allowed_mentions: a reply pings
            await message.reply("quietly", mention_author=False),
            await message.reply("nobody", allowed_mentions=discord.AllowedMentions.none()),
            await message.reply(
                "only you", allowed_mentions=discord.AllowedMentions(users=False, replied_user=True)
            ),
        ]
        found = await emu.wait_for_message(world.general, after=asked)
        assert int(found["id"]) == replies[0].id

    stored = emu.channel_messages(world.general)[1:]
    assert [[u["id"] for u in m["mentions"]] for m in stored] == [
        [str(world.member)],
        [],
        [],
        [str(world.member)],
    ]
    first = stored[0]
    assert first["type"] == 19 and replies[0].type == discord.MessageType.reply
    assert first["message_reference"] == {
        "type": 0,
        "message_id": asked["id"],
        "channel_id": str(world.general),
        "guild_id": str(world.guild),
    }
    assert first["referenced_message"] == asked
    assert replies[0].reference is not None and replies[0].reference.message_id == message.id
    assert emu.violations == []


async def test_replies_are_refused_as_discord_refuses_them(emu: Emulator, world: World) -> None:
    async with running(Listener()) as bot:
        channel = bot.get_channel(world.general)
        assert isinstance(channel, discord.TextChannel)
        gone = channel.get_partial_message(12345)
        with pytest.raises(discord.HTTPException) as caught:
            await channel.send("to nothing", reference=gone)
        assert caught.value.status == 400 and caught.value.code == 50035
        assert "Unknown message" in caught.value.text

        # fail_if_not_exists=False sends it as a plain message instead.
        loose = gone.to_reference(fail_if_not_exists=False)
        sent = await channel.send("anyway", reference=loose)
        assert sent.type == discord.MessageType.default and sent.reference is None

        asked = await emu.send_message(world.member, world.general, "hi")
        joined = await emu.send_message(world.other, world.general, type=7)
        with pytest.raises(discord.HTTPException, match="system message"):
            await channel.send("welcome", reference=channel.get_partial_message(int(joined["id"])))

        # A reply needs Read Message History.
        emu.set_permissions(world.general, emu.application_id, deny=READ_HISTORY)
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("hm", reference=channel.get_partial_message(int(asked["id"])))
        assert refused.value.code == 50013

        # A malformed reference breaks the spec: refused and recorded.
        route = discord.http.Route(
            "POST", "/channels/{channel_id}/messages", channel_id=world.general
        )
        with pytest.raises(discord.HTTPException) as malformed:
            await bot.http.request(route, json={"content": "x", "message_reference": {}})
        assert malformed.value.code == 50035
    # Discord refusing a reply to a missing or a system message is no fault of the bot's.
    assert [v.rule for v in emu.violations] == ["schema"]
    assert [m["content"] for m in emu.channel_messages(world.general)] == ["anyway", "hi", ""]


async def test_a_member_replying_to_the_bot_pings_it_unless_they_turn_it_off(
    emu: Emulator, world: World
) -> None:
    async with running(Listener()) as bot:
        channel = bot.get_channel(world.general)
        assert isinstance(channel, discord.TextChannel)
        post = await channel.send("Which point fits you best?")

        reply = await emu.send_message(world.member, world.general, "autonomy", reply_to=post.id)
        message, raw = await bot.next()
        assert message.content == "autonomy" and bot.user in message.mentions
        assert message.reference is not None and message.reference.message_id == post.id
        assert isinstance(message.reference.resolved, discord.Message)
        assert message.reference.resolved.content == "Which point fits you best?"
        assert raw["type"] == 19 and raw["referenced_message"]["id"] == str(post.id)

        await emu.send_message(
            world.member, world.general, "no ping", reply_to=reply, mention_author=False
        )
        message, raw = await bot.next()
        assert message.content == "" and message.mentions == []

        # A mention that replies to someone else's message: the message replied to is judged
        # on its own, and bob's does not mention the bot.
        plain = await emu.send_message(world.other, world.general, "money matters most")
        await bot.next()
        await emu.mention_bot(world.member, world.general, "do you agree?", reply_to=plain)
        message, raw = await bot.next()
        assert message.content.endswith("do you agree?")
        assert {u.id for u in message.mentions} == {world.other, emu.bot_user_id}
        assert raw["referenced_message"]["content"] == ""
        assert raw["referenced_message"]["author"]["id"] == str(world.other)

        with pytest.raises(LookupError):
            await emu.send_message(world.member, world.general, "?", reply_to=999)


# --- exactly once ------------------------------------------------------------------------------


async def test_message_creates_and_dropped_copies_are_counted(emu: Emulator, world: World) -> None:
    async with running(Listener()) as bot:
        channel = bot.get_channel(world.general)
        assert isinstance(channel, discord.TextChannel)
        dm = await (await bot.fetch_user(world.member)).create_dm()

        await channel.send("one", nonce="n-1")
        await channel.send("one", nonce="n-1")  # the same enforced nonce: Discord drops it
        await channel.send("two")
        await dm.send("hello", nonce="n-1")  # nonces are per channel
        emu.fail_next("POST", r"/channels/\d+/messages$", status=403, code=50013)
        with pytest.raises(discord.Forbidden):
            await channel.send("refused")

    assert emu.message_create_requests == 4
    assert emu.message_create_requests_in(world.general) == 3
    assert emu.message_create_requests_in(emu.dm_channel_id(world.member)) == 1
    assert emu.deduplicated_nonces == emu.deduplicated_nonces_in(world.general) == 1
    assert emu.nonce_duplicates == 1  # the older name
    assert [m["content"] for m in emu.channel_messages(world.general)] == ["one", "two"]


async def test_a_lost_answer_is_retried_and_the_nonce_drops_the_copy(
    emu: Emulator, world: World
) -> None:
    """Discord posted the message but its answer was lost (a 502): discord.py retries, and the
    enforced nonce is what keeps the member from seeing it twice."""
    emu.fail_next("POST", r"/channels/\d+/messages$", status=502, handled=True)
    async with running(Listener()) as bot:
        member = await bot.fetch_user(world.member)
        sent = await member.send("Your check-in", nonce="checkin-7")
    assert [m["content"] for m in emu.dm_messages(world.member)] == ["Your check-in"]
    assert sent.id == int(emu.dm_messages(world.member)[0]["id"])
    assert emu.message_create_requests == 2 and emu.deduplicated_nonces == 1
    assert emu.dm_send_attempts(world.member) == 2
