"""Shards as Discord runs them, driven by discord.py's AutoShardedClient over real HTTP and
websocket: each process holds some shards, each shard hears only the guilds the formula
``(guild_id >> 22) % shard_count`` gives it, every interaction goes to the process that owns its
guild's shard (DMs to shard 0's), and an IDENTIFY Discord would refuse is closed as Discord
closes it.

Two clients in one event loop stand for two processes: each holds its own connections, cache
and command tree, and knows nothing of the other, exactly as two processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from sandbox import DidNotRespond, Emulator
from tests.sandbox.clients import KeepsFailures, Recorded, command_tree, running

SHARD_UNIT = 1 << 22  # the guild id k * SHARD_UNIT belongs to shard k % shard_count
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1


def shard_of(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count


class Press(Recorded, discord.ui.View):
    """A persistent button every process registers, so the answer names who was sent the press."""

    def __init__(self, name: str) -> None:
        super().__init__(timeout=None)
        self.name = name

    @discord.ui.button(label="Press", custom_id="press")
    async def press(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.send_message(f"press heard by {self.name}", ephemeral=True)


class Form(Recorded, discord.ui.Modal, title="Form"):
    text: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Text", custom_id="text")

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"{self.text.value} heard by {self.name}")


class ShardedBot(KeepsFailures, discord.AutoShardedClient):
    """A bot process holding ``shard_ids`` of ``shard_count`` (None: what Discord recommends),
    whose every answer names the process."""

    def __init__(
        self, name: str, *, shard_ids: list[int] | None = None, shard_count: int | None = None
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            intents=intents,
            shard_ids=shard_ids,
            shard_count=shard_count,
            guild_ready_timeout=0.05,
        )
        self.name = name
        self.tree = tree = command_tree(self)

        @tree.command(name="where", description="Which process answered")
        async def where(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"heard by {name}", ephemeral=True)

        @tree.command(name="button", description="A message with a persistent button")
        async def button(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("press it", view=Press(name))

        @tree.command(name="form", description="Opens a modal")
        async def form(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(Form(name))

        @tree.command(name="pick", description="Autocompleted")
        async def pick(interaction: discord.Interaction, choice: str) -> None:
            await interaction.response.send_message(choice, ephemeral=True)

        @pick.autocomplete("choice")
        async def choices(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=f"from {name}", value=name)]

    async def setup_hook(self) -> None:
        self.add_view(Press(self.name))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s between its shards' IDENTIFYs; the emulator has no such limit.
        return None


@pytest.fixture
def guilds(emu: Emulator) -> dict[int, int]:
    """Six servers, alternately on shard 0 and 1 of two (and spread over three), each with a
    channel and the member ``member``: guild id -> the member."""
    member = emu.add_user("ada")
    for k in range(10, 16):
        guild = emu.add_guild(f"Server {k}", id=k * SHARD_UNIT)
        emu.add_text_channel(guild, "general")
        emu.add_members(guild, [member])  # the bulk way: an ordinary member all the same
    return {guild: member for guild in emu._world.guilds}


def owned(guilds: dict[int, int], shard: int, count: int) -> set[int]:
    return {g for g in guilds if shard_of(g, count) == shard}


async def who_answers(emu: Emulator, member: int, guild_id: int | None) -> list[str]:
    """Send every kind of interaction from ``guild_id`` (None: the member's DMs) and return
    what each answer says about who heard it."""
    heard = [(await (await emu.slash(member, "where", guild_id=guild_id)).message())["content"]]
    choices = await emu.autocomplete(member, "pick", focused="choice", value="", guild_id=guild_id)
    heard.append(choices[0]["value"])
    modal = await (await emu.slash(member, "form", guild_id=guild_id)).modal()
    submitted = await emu.submit_modal(member, modal, {"text": "hello"})
    heard.append((await submitted.message())["content"].removeprefix("hello "))
    if guild_id is not None:
        message = await (await emu.slash(member, "button", guild_id=guild_id)).message()
        pressed = await (await emu.click(member, message, "press")).message()
        heard.append(pressed["content"].removeprefix("press "))
    return [text.removeprefix("heard by ") for text in heard]


async def test_two_processes_split_the_guilds_and_answer_for_their_own(
    emu: Emulator, guilds: dict[int, int]
) -> None:
    member = next(iter(guilds.values()))
    zero = ShardedBot("zero", shard_ids=[0], shard_count=2)
    one = ShardedBot("one", shard_ids=[1], shard_count=2)
    async with running(zero), running(one):
        await emu.wait_until_ready(sessions=2)
        sessions = {s.shard: s for s in emu.gateway_sessions()}
        assert sorted(sessions) == [(0, 2), (1, 2)]
        assert sessions[(0, 2)].guilds == owned(guilds, 0, 2) != set()
        assert sessions[(1, 2)].guilds == owned(guilds, 1, 2) != set()
        # What each process holds is what it was sent: the other shard's guilds never reached it.
        assert {g.id for g in zero.guilds} == owned(guilds, 0, 2)
        assert {g.id for g in one.guilds} == owned(guilds, 1, 2)

        await zero.tree.sync()  # global commands: one process registers them for both
        for guild in guilds:
            owner = "zero" if shard_of(guild, 2) == 0 else "one"
            assert await who_answers(emu, member, guild) == [owner] * 4, guild
        assert await who_answers(emu, member, None) == ["zero"] * 3  # DMs: shard 0
    assert emu.violations == []


async def test_without_a_shard_count_the_recommended_one_is_used(
    emu: Emulator, guilds: dict[int, int]
) -> None:
    member = next(iter(guilds.values()))
    assert emu.recommended_shards == 1  # a handful of guilds: one shard, as Discord says
    emu.recommended_shards = 3
    async with running(ShardedBot("solo")) as solo:
        await emu.wait_until_ready(sessions=3)
        assert solo.shard_count == 3 and sorted(solo.shards) == [0, 1, 2]
        sessions = {s.shard[0]: s for s in emu.gateway_sessions()}
        assert sorted(s.shard for s in sessions.values()) == [(0, 3), (1, 3), (2, 3)]
        for shard in range(3):
            assert sessions[shard].guilds == owned(guilds, shard, 3) != set()
        await solo.tree.sync()
        for guild in list(guilds)[:3]:
            assert await who_answers(emu, member, guild) == ["solo"] * 4
    assert emu.violations == []


async def test_an_interaction_no_process_can_hear_does_not_respond(
    emu: Emulator, guilds: dict[int, int]
) -> None:
    member = next(iter(guilds.values()))
    odd = next(iter(owned(guilds, 1, 2)))
    even = next(iter(owned(guilds, 0, 2)))

    async with running(ShardedBot("zero", shard_ids=[0], shard_count=2)) as zero:
        await zero.tree.sync()
        lost = await emu.slash(member, "where", guild_id=odd)
        assert not lost.delivered and lost.did_not_respond
        with pytest.raises(DidNotRespond, match=f"guild {odd} \\(1/2\\)"):
            await lost.message()  # at once, not after the timeout
        with pytest.raises(DidNotRespond):
            await emu.autocomplete(member, "pick", focused="choice", value="", guild_id=odd)
        heard = await emu.slash(member, "where", guild_id=even)
        assert heard.delivered and (await heard.message())["content"] == "heard by zero"
        assert not heard.did_not_respond

    # discord.py's AutoShardedClient closes with 1000, which ends its sessions for good.
    assert emu.gateway_sessions() == []
    with pytest.raises(DidNotRespond, match="no bot session is connected"):
        await (await emu.slash(member, "where", guild_id=even)).message()

    async with running(ShardedBot("one", shard_ids=[1], shard_count=2)):
        await emu.wait_until_ready()
        with pytest.raises(DidNotRespond, match="shard 0, which hears DMs"):
            await (await emu.slash(member, "where")).message()
    assert emu.violations == []


async def test_a_delivered_interaction_left_unanswered_past_the_deadline_did_not_respond(
    emu: Emulator, guilds: dict[int, int]
) -> None:
    member, guild = next(iter(guilds.values())), next(iter(guilds))
    bot = ShardedBot("quiet")
    heard = asyncio.Event()

    @bot.tree.command(name="ignore", description="Never answers")
    async def ignore(interaction: discord.Interaction) -> None:
        heard.set()

    emu.response_deadline = 0.2
    async with running(bot):
        await bot.tree.sync()
        interaction = await emu.slash(member, "ignore", guild_id=guild)
        await asyncio.wait_for(heard.wait(), 5)
        assert interaction.delivered and not interaction.did_not_respond
        await asyncio.sleep(0.3)
        assert interaction.did_not_respond


async def test_an_invalid_shard_is_closed_with_4010(emu: Emulator, guilds: dict[int, int]) -> None:
    beyond = ShardedBot("beyond", shard_ids=[2], shard_count=2)
    await beyond.login("test-token")
    try:
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(beyond.connect(), 5)
    finally:
        await beyond.close()
    assert closed.value.code == 4010
    assert emu.gateway_sessions() == []


@pytest.mark.parametrize(
    "shard", [[2, 2], [0, 0], [-1, 2], [1, 1], [0], [0, 1, 2], ["0", "1"], [True, 2], "0,1"]
)
async def test_identify_with_a_shard_discord_would_refuse_closes_4010(
    emu: Emulator, shard: object
) -> None:
    async with raw_gateway(emu) as ws:
        await identify(ws, shard=shard)
        closing = await ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4010
    assert emu.gateway_sessions() == []


async def test_shards_of_another_count_may_be_live_at_once(
    emu: Emulator, guilds: dict[int, int]
) -> None:
    """Discord checks each IDENTIFY alone, which is how a bot moves to more shards."""
    old = ShardedBot("old", shard_ids=[0], shard_count=1)
    new = ShardedBot("new", shard_ids=[1], shard_count=2)
    async with running(old), running(new):
        await emu.wait_until_ready(sessions=2)
        assert sorted(s.shard for s in emu.gateway_sessions()) == [(0, 1), (1, 2)]


async def test_guild_create_sends_no_members_but_counts_them(emu: Emulator) -> None:
    guild = emu.add_guild("Big")
    emu.add_text_channel(guild, "general")
    emu.add_members(guild, [emu.add_user(f"member{n}") for n in range(299)])
    emu.add_member(guild, emu.add_user("one more"))
    with pytest.raises(LookupError, match="no user 12345"):
        emu.add_members(guild, [12345])
    async with raw_gateway(emu) as ws:
        # Even with the GUILD_MEMBERS intent: the member list needs GUILD_PRESENCES on Discord.
        await identify(ws, intents=GUILDS | GUILD_MEMBERS)
        ready, created = await dispatch(ws), await dispatch(ws)
    assert ready["t"] == "READY" and created["t"] == "GUILD_CREATE"
    assert [m["user"]["id"] for m in created["d"]["members"]] == [str(emu.bot_user_id)]
    assert created["d"]["member_count"] == 302  # the 300, the owner and the bot


async def test_a_shard_over_2500_guilds_is_closed_with_4011_and_more_are_recommended(
    emu: Emulator,
) -> None:
    for k in range(2501):
        emu.add_guild(f"Server {k}")
    assert emu.recommended_shards == 2
    async with raw_gateway(emu) as ws:
        await identify(ws)
        closing = await ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4011
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bot test-token"}
        async with http.get(f"{emu.api_base}/gateway/bot", headers=headers) as response:
            assert (await response.json())["shards"] == 2
        async with http.get(f"{emu.api_base}/gateway", headers=headers) as response:
            assert await response.json() == {"url": emu.gateway_url}


# --- a raw gateway client, for what discord.py would never send -------------------------------


@contextlib.asynccontextmanager
async def raw_gateway(emu: Emulator) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as http, http.ws_connect(emu.gateway_url) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["op"] == 10
        yield ws


async def identify(ws: aiohttp.ClientWebSocketResponse, **fields: object) -> None:
    payload = {"token": "test-token", "intents": GUILDS, "properties": {}, **fields}
    await ws.send_str(json.dumps({"op": 2, "d": payload}))


async def dispatch(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    payload: dict[str, Any] = json.loads(message.data)
    assert payload["op"] == 0
    return payload
