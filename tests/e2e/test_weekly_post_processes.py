"""Two real bot processes on one PostgreSQL post each server's weekly post exactly once.

The same claim-with-lease dispatcher as the DM check-ins: one process may be killed (SIGKILL)
mid-batch, and the other takes its claims over after the lease; the nonce keeps Discord from
showing a post twice if the dead one had sent it.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from db import Database
from db.guild_settings import Setting, change
from db.migrate import upgrade
from db.models import WeeklyPost
from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema
from tests.e2e.processes import assert_copies_only_after_a_takeover, run_two_processes

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
    await run_two_processes(
        tmp_path,
        emulator,
        WeeklyPost,
        sent=lambda: posted(emulator, channels),
        total=SERVERS,
        kill_one=kill_one,
    )
    nonces = []
    for channel in channels:
        messages = emulator.channel_messages(channel)
        assert len(messages) == 1, (channel, [m.get("nonce") for m in messages])
        assert messages[0]["embeds"][0]["title"].startswith("Point of the week")
        nonces.append(messages[0]["nonce"])
    assert len(set(nonces)) == SERVERS
    channel_of_guild = {
        int(m["guild_id"]): c for c in channels for m in emulator.channel_messages(c)
    }
    await assert_copies_only_after_a_takeover(
        emulator, TEST_DATABASE_URL, WeeklyPost, lambda post: channel_of_guild[post.guild_id]
    )
    if not kill_one:  # nobody died mid-send: not one copy
        assert emulator.deduplicated_nonces == 0, emulator.deduplicated_nonces
        assert emulator.message_create_requests == SERVERS
    assert emulator.violations == []
