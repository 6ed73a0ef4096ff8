"""Two shard processes of one bot (`SHARD_COUNT=2`, `SHARD_IDS=0` and `1`) on one PostgreSQL.

They start together on an empty database (the advisory lock makes their migrations take
turns), each serves its own servers' interactions (shard 0 also the DMs), and one killed with
SIGKILL loses nothing: what its members wrote is kept, its servers go quiet only until it is
back, and the other shard goes on meanwhile. The timed jobs a killed shard had claimed are
taken over by the other (tests/e2e/test_checkin_processes.py and test_weekly_post_processes.py
run as these two shards).
"""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import Database
from db.crypto import generate_key
from db.models import Reflection
from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema
from tests.e2e.conftest import text_of
from tests.e2e.processes import logs_of, shard, start_bot, stop

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="TEST_DATABASE_URL is not set: the shard-process PostgreSQL test was skipped",
)

SERVERS_PER_SHARD = 3
BASE = 1_300_000_000_000_000_000 >> 22  # a plausible snowflake's timestamp part


def shard_servers(emulator: Emulator) -> dict[int, list[tuple[int, int, int]]]:
    """For each of two shards, servers it owns by Discord's formula, (guild_id >> 22) % 2,
    each with a text channel and a member: shard -> [(guild, channel, member)]."""
    servers: dict[int, list[tuple[int, int, int]]] = {0: [], 1: []}
    for n in range(2 * SERVERS_PER_SHARD):
        guild = emulator.add_guild(f"server{n}", id=(BASE + n) << 22)
        channel = emulator.add_text_channel(guild, "general")
        member = emulator.add_user(f"member{n}")
        emulator.add_member(guild, member)
        servers[(guild >> 22) % 2].append((guild, channel, member))
    return servers


async def reflect(emulator: Emulator, member: int, guild: int, channel: int, text: str) -> str:
    ix = await emulator.slash(
        member, "reflect", options={"point": "purpose"}, guild_id=guild, channel_id=channel
    )
    modal = await ix.modal()
    submitted = await emulator.submit_modal(
        member, modal, {"text": text, "comfort": ["4"]}, guild_id=guild, channel_id=channel
    )
    return text_of(await submitted.message())


async def journal(emulator: Emulator, member: int, guild: int | None, channel: int | None) -> str:
    ix = await emulator.slash(member, "journal list", guild_id=guild, channel_id=channel)
    return text_of(await ix.message())


async def reflections_saved(url: str) -> int:
    database = Database(url)
    try:
        async with database.read() as session:
            return await session.scalar(select(func.count()).select_from(Reflection)) or 0
    finally:
        await database.dispose()


async def test_two_shard_processes_serve_their_own_servers_and_survive_a_kill(
    tmp_path: Path,
) -> None:
    url = TEST_DATABASE_URL
    assert url
    await reset_postgres_schema(url)  # empty: both processes migrate as they start
    emulator = Emulator()
    await emulator.start()
    servers = shard_servers(emulator)
    key = generate_key()
    zero = one = None
    try:
        zero, one = await asyncio.gather(
            start_bot(tmp_path, emulator, key, "shard0", **shard(0)),
            start_bot(tmp_path, emulator, key, "shard1", **shard(1)),
        )
        await emulator.wait_until_ready(timeout=90, sessions=2)
        assert sorted(s.shard for s in emulator.gateway_sessions()) == [(0, 2), (1, 2)]

        # Each shard answers its own servers; the DM goes to shard 0.
        for owner in (0, 1):
            for guild, channel, member in servers[owner]:
                answer = await reflect(emulator, member, guild, channel, f"why {guild}")
                assert "1/6" in answer, answer
        _, _, dm_member = servers[1][0]
        assert f"why {servers[1][0][0]}" in await journal(emulator, dm_member, None, None)

        # Shard 1 killed: its servers go unanswered, shard 0's are served as before.
        one.kill()
        await one.wait()
        guild, channel, member = servers[1][1]
        ix = await emulator.slash(member, "journal list", guild_id=guild, channel_id=channel)
        with pytest.raises(TimeoutError):  # the member sees "The application did not respond"
            await ix.response(timeout=4)
        guild, channel, member = servers[0][1]
        assert await reflect(emulator, member, guild, channel, "still here")

        # Back again: nothing its members wrote was lost.
        one = await start_bot(tmp_path, emulator, key, "shard1-again", **shard(1))
        await emulator.wait_until_ready(timeout=90, sessions=2)
        for guild, channel, member in servers[1]:
            assert f"why {guild}" in await journal(emulator, member, guild, channel)
        assert await reflections_saved(url) == 2 * SERVERS_PER_SHARD + 1
    finally:
        await stop(*(p for p in (zero, one) if p is not None))
        await emulator.stop()
    logs = logs_of(tmp_path)
    assert "Traceback" not in logs, logs[-3000:]
    assert emulator.violations == []
