"""The database drops out in the middle of a batch of check-ins, and comes back.

PostgreSQL: a TCP proxy between the bot and the server cuts every connection, then refuses
new ones. SQLite: the database file (and its write-ahead log) is made read-only. Meanwhile
members who press a button are told storage is unavailable and nothing was lost, a form's
text is handed back, and the check-in loop logs and tries again. When the database returns,
every due check-in is delivered exactly once: one message per member, and not one copy that
Discord had to drop by its nonce.

The outage lasts OUTAGE_SECONDS (2 by default, so the suite stays fast; the README reports a
run with OUTAGE_SECONDS=20). The bot's clock is real time, as in production, with a short
lease, so a claim the outage strands would be taken over (and its check-in sent again) well
within the test. Each run prints how long delivery took to recover once the database was back.
"""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from advice.clock import SystemClock
from db import Database
from db.checkins import start_plan
from db.jobs import JobState
from db.migrate import upgrade
from db.models import Checkin, User
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema
from tests.e2e.conftest import World, start_world, stop_world
from tests.e2e.outage import (
    DatabaseProxy,
    can_make_read_only,
    set_read_only,
    sqlite_files,
)
from tests.e2e.test_reflect import open_reflect

OUTAGE_SECONDS = float(os.environ.get("OUTAGE_SECONDS", "2"))
MEMBERS = 120
RATE = 60  # requests a second: two seconds of sending, so the outage falls mid-batch
LEASE = timedelta(seconds=5)
ORDER = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")
UNAVAILABLE = "can't reach its storage"


def daytime_zone(now: datetime) -> str:
    """A zone where it is early afternoon right now, so no check-in waits for 08:00."""
    offset = (13 - now.hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def seed(database: Database, world: World) -> list[int]:
    """Members with a kept DM channel and a check-in that fell due a few minutes ago."""
    now = datetime.now(UTC)
    members = []
    async with database.transaction() as session:
        for n in range(MEMBERS):
            user_id = world.emulator.add_user(f"member{n}")
            channel = world.emulator.dm_channel_id(user_id)
            zone = daytime_zone(now)
            session.add(User(id=user_id, created_at=now, timezone=zone, dm_channel_id=channel))
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
    return members


@asynccontextmanager
async def postgres_outage(tmp_path: Path) -> AsyncIterator[tuple[Database, Any, Any]]:
    assert TEST_DATABASE_URL
    await reset_postgres_schema(TEST_DATABASE_URL)
    async with _migrated(Database(TEST_DATABASE_URL)):
        pass
    proxy = DatabaseProxy(TEST_DATABASE_URL)
    await proxy.start()
    try:
        async with _migrated(Database(proxy.url)) as database:
            yield database, proxy.refuse, proxy.start
    finally:
        await proxy.stop()


@asynccontextmanager
async def sqlite_outage(tmp_path: Path) -> AsyncIterator[tuple[Database, Any, Any]]:
    why_not = can_make_read_only(tmp_path)
    if why_not:
        pytest.skip(f"an SQLite file cannot be made read-only under open connections: {why_not}")
    path = tmp_path / "outage.db"
    files = sqlite_files(path)

    async def begin() -> None:
        set_read_only(files, True)

    async def end() -> None:
        set_read_only(files, False)

    try:
        async with _migrated(Database(f"sqlite+aiosqlite:///{path}")) as database:
            yield database, begin, end
    finally:
        set_read_only(files, False)


@asynccontextmanager
async def _migrated(database: Database) -> AsyncIterator[Database]:
    try:
        await upgrade(database)
        yield database
    finally:
        await database.dispose()


def backends() -> list[Any]:
    no_postgres = pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="TEST_DATABASE_URL is not set: the PostgreSQL half of this test was skipped",
    )
    return [
        pytest.param(sqlite_outage, id="sqlite-read-only"),
        pytest.param(postgres_outage, id="postgresql-connections-cut", marks=no_postgres),
    ]


async def until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Wait (real time: the outage is real) until `condition`; when it came, by monotonic."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
    return time.monotonic()


async def recorded(database: Database) -> int:
    async with database.read() as session:
        done = await session.scalar(
            select(func.count())
            .select_from(Checkin)
            .where(Checkin.state == JobState.DONE, Checkin.message_id.is_not(None))
        )
    return done or 0


@pytest.mark.parametrize("outage", backends())
async def test_a_database_that_drops_out_mid_batch_loses_and_doubles_nothing(
    outage: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with outage(tmp_path) as (database, begin_outage, end_outage):
        world, runner = await start_world(
            database,
            SystemClock(),  # type: ignore[arg-type]  # real time: leases run out as in production
            tick_seconds=15,  # production's: while storage is away the loop retries sooner
            job_lease=LEASE,
            requests_per_second=RATE,
        )
        try:
            form = await open_reflect(world, world.alice, "money")
            members = await seed(database, world)
            emulator = world.emulator
            channels = [emulator.dm_channel_id(m) for m in members]

            def sent() -> int:
                return sum(emulator.message_create_requests_in(c) for c in channels)

            world.bot.wake_timed_jobs()
            await until(lambda: sent() >= MEMBERS // 4, 30, "the batch to begin")
            await begin_outage()
            began = time.monotonic()
            assert sent() < MEMBERS, "the batch finished before the outage; begin it earlier"

            # Meanwhile a member presses a button on their check-in, another sends a form.
            first = members[0]
            [dm] = emulator.dm_messages(first)
            skip = next(
                c["custom_id"]
                for row in dm["components"]
                for c in row["components"]
                if "checkin-skip" in c["custom_id"]
            )
            pressed = await (await emulator.click(first, dm, skip)).message()
            assert UNAVAILABLE in pressed["content"], pressed
            submitted = await emulator.submit_modal(world.alice, form, {"text": "kept for me"})
            answer = await submitted.message()
            assert UNAVAILABLE in answer["content"] and "nothing is lost" in answer["content"]
            assert emulator.attachment_bytes(answer, "what-you-wrote.txt") == b"kept for me"

            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))
            sent_during = sent()  # the batch went on: sending needs no database
            await end_outage()
            back, back_wall = time.monotonic(), time.time()
            loop: Any = world.bot.get_cog("Checkins")
            ticked = await until(
                lambda: (loop.loop.last_success or 0) > back_wall,
                60,
                "a successful tick",
            )
            await until(lambda: sent() >= MEMBERS, 60, "every check-in to go out")
            deadline = time.monotonic() + 60
            while await recorded(database) < MEMBERS:
                assert time.monotonic() < deadline, "sent but never recorded"
                await asyncio.sleep(0.05)
            settled = time.monotonic()
            # Past a lease more: a stranded claim would have been taken over and sent again.
            await asyncio.sleep(LEASE.total_seconds() + 1)
        finally:
            await stop_world(world, runner)

    for member, channel in zip(members, channels, strict=True):
        assert emulator.message_create_requests_in(channel) == 1, member
    assert emulator.deduplicated_nonces == 0
    assert emulator.violations == []
    assert any(
        "storage" in r.getMessage() and r.name == "cogs.core.jobs.loop" for r in caplog.records
    )
    print(
        f"\n{outage.__name__}: {OUTAGE_SECONDS:.0f} s outage, {sent_during} of {MEMBERS} "
        f"sent by then; after the database returned: next successful tick in "
        f"{ticked - back:.2f} s, every due check-in delivered and recorded in "
        f"{settled - back:.2f} s"
    )
