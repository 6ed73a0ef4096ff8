"""Two real bot processes (`python bot.py`) on one PostgreSQL against one emulator.

Every due check-in must reach its member exactly once, counted by nonce at the emulator,
including when one process is killed (SIGKILL) in the middle of a batch: its claims are
taken over after their lease, and Discord's nonce check drops a copy of any DM it had sent.
The emulator enforces Discord's global limit of 50 requests per second; the processes share
one pace of 30 through the database (tests/e2e/processes.py), so no 429 comes back. The 20
spare make room for the emulator's own event loop stalling on a loaded machine (requests it
reads late arrive as a burst, which a real network would not make).
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db import Database
from db.checkins import start_plan
from db.migrate import upgrade
from db.models import Checkin, User
from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema
from tests.e2e.processes import (
    assert_copies_only_after_a_takeover,
    assert_one_pace_shared,
    run_two_processes,
)

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="TEST_DATABASE_URL is not set: the two-process PostgreSQL test was skipped",
)

MEMBERS = 150  # five seconds of sending at 30 requests per second
ORDER = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")


def daytime_zone(now: datetime) -> str:
    """A zone where it is early afternoon right now, so no check-in waits for 08:00."""
    offset = (13 - now.hour + 12) % 24 - 12  # -12..11 hours from UTC
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def seed(url: str, emulator: Emulator) -> list[int]:
    """Members with a kept DM channel and a check-in that fell due a few minutes ago."""
    await reset_postgres_schema(url)
    database = Database(url)
    await upgrade(database)
    now = datetime.now(UTC)
    zone = daytime_zone(now)
    members = []
    async with database.transaction() as session:
        for n in range(MEMBERS):
            user_id = emulator.add_user(f"member{n}")
            session.add(
                User(
                    id=user_id,
                    created_at=now,
                    timezone=zone,
                    dm_channel_id=emulator.dm_channel_id(user_id),
                )
            )
            await session.flush()
            _, pending = await start_plan(
                session,
                user_id=user_id,
                cadence="weekly",
                weekday=now.weekday(),
                hour=8,
                order=ORDER,
                now=now - timedelta(days=1),
            )
            pending.due_at = pending.scheduled_at = now - timedelta(minutes=3)
            members.append(user_id)
    await database.dispose()
    return members


def delivered(emulator: Emulator, members: list[int]) -> int:
    """DM requests so far; cheap, since polling must not stall the emulator's event loop (a
    stalled emulator sees paced requests arrive in a burst, as a real network never would)."""
    return sum(emulator.dm_send_attempts(m) for m in members)


def assert_each_delivered_once(emulator: Emulator, members: list[int]) -> None:
    nonces = []
    for member in members:
        messages = emulator.dm_messages(member)
        assert len(messages) == 1, (member, [m.get("nonce") for m in messages])
        nonces.append(messages[0]["nonce"])
    assert len(set(nonces)) == len(members)
    # The processes share one pace (30/s) through the database. Without it, the two would
    # send 60 a second against the emulator's 50 and a sixth would come back 429 (about 25).
    # A handful can still happen when a stalled event loop releases queued requests at once;
    # discord.py waits those out. bench/checkins.py counts them at the full 50 on a quiet
    # machine.
    assert emulator.rate_limited_count <= MEMBERS // 20, emulator.rate_limited_count
    assert emulator.violations == []


@pytest.mark.parametrize("kill_one", [False, True], ids=["both-live", "one-killed"])
async def test_two_processes_deliver_every_due_checkin_exactly_once(
    tmp_path: Path, paced_emulator: Emulator, kill_one: bool
) -> None:
    assert TEST_DATABASE_URL
    members = await seed(TEST_DATABASE_URL, paced_emulator)
    await run_two_processes(
        tmp_path,
        paced_emulator,
        Checkin,
        sent=lambda: delivered(paced_emulator, members),
        total=MEMBERS,
        kill_one=kill_one,
    )
    assert_each_delivered_once(paced_emulator, members)
    await assert_copies_only_after_a_takeover(
        paced_emulator,
        TEST_DATABASE_URL,
        Checkin,
        lambda checkin: paced_emulator.dm_channel_id(checkin.user_id),
    )
    if not kill_one:  # nobody died mid-send: not one copy, and one pace for both
        assert paced_emulator.deduplicated_nonces == 0, paced_emulator.deduplicated_nonces
        assert paced_emulator.message_create_requests == len(members)
        assert_one_pace_shared(paced_emulator)


def test_daytime_zone_is_early_afternoon() -> None:
    from zoneinfo import ZoneInfo

    for hour in range(24):
        now = datetime(2026, 1, 5, hour, 30, tzinfo=UTC)
        assert now.astimezone(ZoneInfo(daytime_zone(now))).hour in (12, 13, 14), hour
