"""The parts of Discord a reliable bot must cope with, driven by real discord.py clients over
real HTTP and websocket: closed DMs, the global rate limit, enforced nonces, members writing DMs,
several gateway sessions and shards, and fixed ids.

discord.py swallows exceptions raised in its event handlers, so the clients only collect what
they heard (queues) and the tests assert in their own body.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
import discord
import pytest

from sandbox import Emulator, Snowflakes
from tests.sandbox.clients import TreeClient, running

SHARD_UNIT = 1 << 22  # the guild id k * SHARD_UNIT belongs to shard k % shard_count


class Client(TreeClient):
    """A tiny bot that hears guilds (and DMs, if asked), optionally as one shard; it keeps the
    messages and guild joins it heard, and answers /where with its shard."""

    def __init__(self, *, dm_messages: bool = False, shard: tuple[int, int] | None = None) -> None:
        shard_id, shard_count = shard or (None, None)
        super().__init__(dm_messages=dm_messages, shard_id=shard_id, shard_count=shard_count)
        self.heard: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.joined: asyncio.Queue[discord.Guild] = asyncio.Queue()
        label = "unsharded" if shard is None else f"shard {shard[0]}"

        @self.tree.command(name="where", description="Says which client answered")
        async def where(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(label)

    async def on_message(self, message: discord.Message) -> None:
        await self.heard.put(message)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.joined.put(guild)


@dataclass
class World:
    guild: int
    channel: int
    other: int
    user: int


@pytest.fixture
def world(emu: Emulator) -> World:
    guild = emu.add_guild("Test Server")
    channel = emu.add_text_channel(guild, "general")
    other = emu.add_text_channel(guild, "announcements")
    user = emu.add_user("ada")
    emu.add_member(guild, user)
    return World(guild, channel, other, user)


def text_channel(client: Client, channel_id: int) -> discord.TextChannel:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


def rules(emu: Emulator) -> list[str]:
    return [v.rule for v in emu.violations]


async def raw_get(emu: Emulator, path: str) -> tuple[int, dict[str, str], object]:
    """One request outside discord.py, which would otherwise wait out a 429 unseen."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emu.api_base}{path}", headers={"Authorization": "Bot test-token"}) as response,
    ):
        return response.status, dict(response.headers), await response.json()


# --- closed DMs -----------------------------------------------------------------------------


async def test_closed_dms_refuse_with_50007_and_count_each_attempt(
    emu: Emulator, world: World
) -> None:
    async with running(Client()) as client:
        member = await client.fetch_user(world.user)
        emu.set_dms_open(world.user, False)
        with pytest.raises(discord.Forbidden) as caught:
            await member.send("Your weekly check-in")
        assert caught.value.code == 50007
        assert caught.value.text == "Cannot send messages to this user"
        assert emu.dm_send_attempts(world.user) == 1
        assert emu.dm_messages(world.user) == []
        # Opening the DM channel still works while the member's DMs are closed.
        assert [r.status for r in emu.requests if r.path == "/users/@me/channels"] == [200]

        emu.set_dms_open(world.user, True)
        await member.send("Your weekly check-in")
        assert emu.dm_send_attempts(world.user) == 2
        assert [m["content"] for m in emu.dm_messages(world.user)] == ["Your weekly check-in"]
    assert emu.violations == []


async def test_injected_no_mutual_guilds_error(emu: Emulator, world: World) -> None:
    emu.fail_next("POST", r"/channels/\d+/messages$", status=403, code=50278)
    async with running(Client()) as client:
        member = await client.fetch_user(world.user)
        with pytest.raises(discord.Forbidden) as caught:
            await member.send("hello")
    assert caught.value.code == 50278
    assert "no mutual guilds" in caught.value.text
    assert emu.dm_send_attempts(world.user) == 1


# --- the global rate limit ------------------------------------------------------------------


async def test_global_limit_answers_429_with_discords_headers(emu: Emulator) -> None:
    emu.global_rate_limit = 1
    first, _, _ = await raw_get(emu, "/users/@me")
    status, headers, body = await raw_get(emu, "/users/@me")
    assert (first, status) == (200, 429)
    assert isinstance(body, dict)
    assert body["message"] == "You are being rate limited."
    assert body["global"] is True and body["code"] == 0
    assert 0 < body["retry_after"] <= 1
    assert headers["Retry-After"] == "1"
    assert headers["X-RateLimit-Global"] == "true"
    assert headers["X-RateLimit-Scope"] == "global"
    assert headers["Via"] == "1.1 google"
    assert emu.rate_limited_count == 1
    assert emu.violations == []


async def test_discord_py_waits_out_the_global_limit_and_retries(
    emu: Emulator, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(Client()) as client:
        channel = text_channel(client, world.channel)
        emu.global_rate_limit = 3
        with caplog.at_level(logging.WARNING, logger="discord.http"):
            for i in range(5):
                await channel.send(f"message {i}")
    sent = [m["content"] for m in emu.channel_messages(world.channel)]
    assert sent == [f"message {i}" for i in range(5)]
    statuses = [r.status for r in emu.requests if r.path.endswith("/messages")]
    assert 429 in statuses and statuses[-1] == 200
    assert emu.rate_limited_count == statuses.count(429) >= 1
    # discord.py read it as the global limit (it holds every request, not one route).
    assert any("Global rate limit" in r.getMessage() for r in caplog.records)
    assert emu.violations == []


async def test_interaction_answers_are_exempt_from_the_global_limit(
    emu: Emulator, world: World
) -> None:
    client = Client()
    done = asyncio.Event()

    @client.tree.command(name="busy", description="Answers, follows up, edits")
    async def busy(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("one")
        await interaction.followup.send("two")
        await interaction.edit_original_response(content="one, edited")
        done.set()

    async with running(client):
        await client.tree.sync()
        # One request per 10 s: the channel message below fills the window for the whole test.
        emu.global_rate_limit = 0.1
        await text_channel(client, world.channel).send("fills the window")
        await emu.slash(world.user, "busy", guild_id=world.guild)
        await asyncio.wait_for(done.wait(), 5)
        answers = [r for r in emu.requests if r.path.startswith(("/interactions/", "/webhooks/"))]
        assert [r.method for r in answers] == ["POST", "POST", "PATCH"]
        assert all(r.status in (200, 204) for r in answers)
        assert emu.rate_limited_count == 0
        status, _, _ = await raw_get(emu, "/users/@me")  # the limit is in force all the same
        assert status == 429 and emu.rate_limited_count == 1
    assert emu.violations == []


# --- nonces -----------------------------------------------------------------------------------


async def test_enforced_nonce_returns_the_first_message_per_channel(
    emu: Emulator, world: World
) -> None:
    async with running(Client()) as client:
        channel = text_channel(client, world.channel)
        first = await channel.send("check-in", nonce="checkin-42")
        again = await channel.send("check-in", nonce="checkin-42")
        elsewhere = await text_channel(client, world.other).send("check-in", nonce="checkin-42")
    assert again.id == first.id
    assert elsewhere.id != first.id  # nonces are per channel
    assert emu.nonce_duplicates == 1
    assert [m["content"] for m in emu.channel_messages(world.channel)] == ["check-in"]
    assert emu.violations == []


async def test_nonce_over_25_characters_is_a_violation(emu: Emulator, world: World) -> None:
    async with running(Client()) as client:
        with pytest.raises(discord.HTTPException) as caught:
            await text_channel(client, world.channel).send("check-in", nonce="n" * 26)
    assert caught.value.status == 400 and caught.value.code == 50035
    assert rules(emu) == ["limits"]
    assert "nonce" in emu.violations[0].detail


# --- members writing DMs ----------------------------------------------------------------------


async def test_member_dm_reaches_only_a_session_with_the_dm_intent(
    emu: Emulator, world: World
) -> None:
    async with running(Client(dm_messages=True)) as listening, running(Client()) as deaf:
        assert emu.session_count == 2
        assert sorted(s.intents for s in emu.gateway_sessions()) == [1, 1 | 1 << 12]
        await (await listening.fetch_user(world.user)).send("How was your week?")
        sent = await emu.send_dm(world.user, "Good, thanks")

        message = await asyncio.wait_for(listening.heard.get(), 5)
        assert message.content == "Good, thanks"
        assert message.author.id == world.user
        assert message.guild is None
        assert isinstance(message.channel, discord.DMChannel)
        assert message.channel.id == emu.dm_channel_id(world.user)
        assert message.id == int(sent["id"])
        # A guild both sessions hear about: had `deaf` been sent the DM, it would have read it
        # before this (one websocket keeps its order).
        emu.add_guild("Later")
        await asyncio.wait_for(deaf.joined.get(), 5)
        assert deaf.heard.empty()
    conversation = [(m["author"]["id"], m["content"]) for m in emu.dm_messages(world.user)]
    assert conversation == [
        (str(emu.bot_user_id), "How was your week?"),
        (str(world.user), "Good, thanks"),
    ]
    assert "guild_id" not in sent and sent["type"] == 0
    assert emu.violations == []


# --- sessions and shards ----------------------------------------------------------------------


async def test_shards_hear_only_their_guilds(emu: Emulator) -> None:
    even = emu.add_guild("Even", id=10 * SHARD_UNIT)
    odd = emu.add_guild("Odd", id=11 * SHARD_UNIT)
    member = emu.add_user("ada")
    for guild in (even, odd):
        emu.add_text_channel(guild, "general")
        emu.add_member(guild, member)

    async with running(Client(shard=(0, 2))) as zero, running(Client(shard=(1, 2))) as one:
        await emu.wait_until_ready(sessions=2)
        assert sorted(s.shard for s in emu.gateway_sessions()) == [(0, 2), (1, 2)]
        assert [g.id for g in zero.guilds] == [even]
        assert [g.id for g in one.guilds] == [odd]

        await zero.tree.sync()
        answers = [
            (await (await emu.slash(member, "where", guild_id=guild)).message())["content"]
            for guild in (even, odd)
        ]
        assert answers == ["shard 0", "shard 1"]
        from_dms = await (await emu.slash(member, "where")).message()
        assert from_dms["content"] == "shard 0"  # DMs go to shard 0

        later_odd = emu.add_guild("Later odd", id=13 * SHARD_UNIT)
        later_even = emu.add_guild("Later even", id=14 * SHARD_UNIT)
        assert (await asyncio.wait_for(one.joined.get(), 5)).id == later_odd
        assert (await asyncio.wait_for(zero.joined.get(), 5)).id == later_even
    assert emu.violations == []


async def test_sessions_coexist_and_each_resumes_on_its_own(emu: Emulator, world: World) -> None:
    async with running(Client()) as first, running(Client()) as second:
        await emu.wait_until_ready(sessions=2)
        before = [s.id for s in emu.gateway_sessions()]
        assert len(before) == 2 and first.is_ready() and second.is_ready()

        await emu.disconnect_gateway(resumable=True)  # the newest session: `second`'s
        assert emu.session_count == 1
        await emu.wait_until_ready(sessions=2)
        assert [s.id for s in emu.gateway_sessions()] == before  # resumed, not replaced

        await emu.disconnect_gateway(resumable=False)
        await emu.wait_until_ready(sessions=2)
        after = [s.id for s in emu.gateway_sessions()]
        assert after[0] == before[0] and after[1] not in before  # `second` identified anew
        assert [g.id for g in second.guilds] == [world.guild]
    for _ in range(100):
        if emu.session_count == 0:
            break
        await asyncio.sleep(0.01)
    # discord.py closes with 4000, so (as on Discord) both sessions wait for a RESUME.
    assert [s.live for s in emu.gateway_sessions()] == [False, False]
    assert emu.violations == []


# --- fixed ids --------------------------------------------------------------------------------


async def test_fixed_ids_are_kept(emu: Emulator) -> None:
    guild = emu.add_guild("Kept", id=123 * SHARD_UNIT)
    channel = emu.add_text_channel(guild, "general", id=456 * SHARD_UNIT)
    user = emu.add_user("kept", id=789 * SHARD_UNIT)
    emu.add_member(guild, user)
    assert (guild, channel, user) == (123 * SHARD_UNIT, 456 * SHARD_UNIT, 789 * SHARD_UNIT)
    for taken in (guild, channel, user, emu.application_id):
        with pytest.raises(ValueError, match="taken"):
            emu.add_user("twin", id=taken)
    with pytest.raises(ValueError):
        emu.add_guild("Nothing", id=0)

    async with running(Client()) as client:
        assert [g.id for g in client.guilds] == [guild]
        assert [c.id for c in client.guilds[0].text_channels] == [channel]
        assert (await client.fetch_user(user)).name == "kept"
    assert emu.violations == []


def test_generated_ids_step_over_fixed_ones() -> None:
    snowflakes = Snowflakes(clock=lambda: 1_700_000_000.0)  # a stopped clock: ids go +1
    first = snowflakes()
    snowflakes.reserved.update({first + 1, first + 2})
    assert snowflakes() == first + 3
