"""Two real bot processes on one PostgreSQL post each server's weekly post exactly once.

The same claim-with-lease dispatcher as the DM check-ins: one process may be killed (SIGKILL)
mid-batch, and the other takes its claims over after the lease; the nonce keeps Discord from
showing a post twice if the dead one had sent it.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from db import Database
from db.crypto import generate_key
from db.guild_settings import Setting, change
from db.migrate import upgrade
from db.models import WeeklyPost
from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema
from tests.e2e.processes import (
    LEASE_SECONDS,
    logs_of,
    start_bot,
    stop,
    taken_over,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="TEST_DATABASE_URL is not set: the two-process PostgreSQL test was skipped",
)

SERVERS = 60


async def seed(url: str, emulator: Emulator) -> list[int]:
    """Servers with a channel and a weekly post that fell due a few minutes ago."""
    await reset_postgres_schema(url)
    database = Database(url)
    await upgrade(database)
    now = datetime.now(UTC)
    channels = []
    async with database.transaction() as session:
        for n in range(SERVERS):
            guild = emulator.add_guild(f"server{n}")
            channel = emulator.add_channel(guild, "reflections")
            for setting, values in (
                (Setting.CHANNEL, {"channel_id": channel}),
                (Setting.WEEKLY_POST, {"weekly_post_enabled": True}),
            ):
                await change(
                    session, guild_id=guild, user_id=None, setting=setting, now=now, **values
                )
            channels.append(channel)
        await session.execute(
            update(WeeklyPost).values(
                due_at=now - timedelta(minutes=3), scheduled_at=now - timedelta(minutes=3)
            )
        )
    await database.dispose()
    return channels


def posted(emulator: Emulator, channels: list[int]) -> int:
    return sum(1 for c in channels if emulator.channel_messages(c))


@pytest.mark.parametrize("kill_one", [False, True], ids=["both-live", "one-killed"])
async def test_two_processes_post_each_servers_weekly_post_once(
    tmp_path: Path, paced_emulator: Emulator, kill_one: bool
) -> None:
    emulator = paced_emulator
    assert TEST_DATABASE_URL
    channels = await seed(TEST_DATABASE_URL, emulator)
    key = generate_key()
    first = await start_bot(tmp_path, emulator, key, "first")
    # The killed one runs alone until it is mid-batch, so it surely holds claims to take over.
    second = None if kill_one else await start_bot(tmp_path, emulator, key, "second")
    try:
        await emulator.wait_until_ready(timeout=60, sessions=1 if kill_one else 2)
        if kill_one:
            await wait_for(lambda: posted(emulator, channels) >= SERVERS // 4, 30)
            first.kill()
            await first.wait()
            assert posted(emulator, channels) < SERVERS, "the batch finished before the kill"
            second = await start_bot(tmp_path, emulator, key, "second")
        await wait_for(lambda: posted(emulator, channels) >= SERVERS, 60)
        await asyncio.sleep(LEASE_SECONDS + 1)  # long enough for a double to show up
    finally:
        await stop(*(p for p in (first, second) if p is not None))
    nonces = []
    for channel in channels:
        messages = emulator.channel_messages(channel)
        assert len(messages) == 1, (channel, [m.get("nonce") for m in messages])
        assert messages[0]["embeds"][0]["title"].startswith("Point of the week")
        nonces.append(messages[0]["nonce"])
    assert len(set(nonces)) == SERVERS
    if kill_one:
        assert await taken_over(TEST_DATABASE_URL, WeeklyPost)
    assert emulator.violations == []
    logs = logs_of(tmp_path)
    assert "Traceback" not in logs, logs[-3000:]
