"""Timed jobs claimed with a lease (db/jobs.py) on SQLite and PostgreSQL, with the Checkin model."""

import asyncio
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db import Database
from db.jobs import JobState, claim_due, count_due, finish, reserve_slots, retry_later
from db.models import AppState, Checkin
from db.users import ensure_user

NOW = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
ALICE = 1001


async def add_jobs(
    database: Database, *specs: Mapping[str, object], user_id: int = ALICE
) -> list[int]:
    """Insert check-ins (defaults: pending, due now, unleased); returns their ids in order.

    Each for a member of its own (`user_id`, then the next ids): a member has at most one
    pending regular check-in (a database constraint), and these test the claim, not members.
    """
    async with database.transaction() as session:
        rows = []
        for index, spec in enumerate(specs):
            await ensure_user(session, user_id + index, now=NOW)
            fields: dict[str, object] = {
                "user_id": user_id + index,
                "kind": "point",
                "scheduled_at": spec.get("due_at", NOW),
                "due_at": NOW,
                "state": JobState.PENDING,
                "attempts": 0,
                "late": False,
            }
            fields.update(spec)
            rows.append(Checkin(**fields))
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def claim(
    database: Database, *, now: datetime = NOW, limit: int = 100, lease: timedelta = LEASE
) -> list[Checkin]:
    async with database.transaction() as session:
        return await claim_due(session, Checkin, now=now, lease=lease, limit=limit)


async def stored(database: Database, job_id: int) -> Checkin:
    async with database.read() as session:
        row = await session.get(Checkin, job_id)
        assert row is not None
        return row


async def test_claims_only_due_pending_unleased_jobs_oldest_first(database: Database) -> None:
    hour = timedelta(hours=1)
    ids = await add_jobs(
        database,
        {"due_at": NOW - 1 * hour},  # 0: due
        {"due_at": NOW - 3 * hour},  # 1: due, oldest
        {"due_at": NOW - 2 * hour},  # 2: due
        {"due_at": NOW + timedelta(seconds=1)},  # 3: not yet due
        {"due_at": NOW - 5 * hour, "state": JobState.DONE},  # 4: done
        {"due_at": NOW - 5 * hour, "state": JobState.CANCELLED},  # 5: cancelled
        {"due_at": NOW - 5 * hour, "state": JobState.FAILED},  # 6: failed
        {"due_at": NOW - 5 * hour, "lease_until": NOW + timedelta(seconds=1)},  # 7: leased
        {"due_at": NOW - timedelta(minutes=30), "lease_until": NOW, "attempts": 1},  # 8: expired
        {"due_at": NOW},  # 9: due exactly now
    )
    first = await claim(database, limit=3)
    assert [job.id for job in first] == [ids[1], ids[2], ids[0]]
    assert all(job.lease_until == NOW + LEASE and job.attempts == 1 for job in first)
    assert all(job.state == JobState.PENDING for job in first)

    rest = await claim(database, limit=10)
    assert [job.id for job in rest] == [ids[8], ids[9]]
    assert [job.attempts for job in rest] == [2, 1]

    assert await claim(database, limit=10) == []
    untouched = [await stored(database, ids[i]) for i in (3, 4, 7)]
    assert [(row.attempts, row.lease_until) for row in untouched] == [
        (0, None),
        (0, None),
        (0, NOW + timedelta(seconds=1)),
    ]
    claimed = await stored(database, ids[1])
    assert (claimed.attempts, claimed.lease_until, claimed.state) == (1, NOW + LEASE, "pending")


async def test_a_second_claim_at_the_same_time_gets_nothing(database: Database) -> None:
    await add_jobs(database, {}, {}, {})
    assert len(await claim(database)) == 3
    assert await claim(database) == []
    assert await claim(database, now=NOW + LEASE - timedelta(microseconds=1)) == []


async def test_after_the_lease_another_claimer_takes_over(database: Database) -> None:
    (job_id,) = await add_jobs(database, {})
    (mine,) = await claim(database)
    assert await claim(database, now=NOW + timedelta(minutes=4)) == []
    (theirs,) = await claim(database, now=NOW + LEASE)
    assert theirs.id == mine.id == job_id
    assert (mine.attempts, theirs.attempts) == (1, 2)
    assert theirs.lease_until == NOW + 2 * LEASE


async def test_a_stale_claim_can_neither_finish_nor_retry(database: Database) -> None:
    (job_id,) = await add_jobs(database, {})
    (stale,) = await claim(database)
    (current,) = await claim(database, now=NOW + LEASE)
    async with database.transaction() as session:
        assert not await finish(session, Checkin, stale, JobState.DONE, message_id=42)
        assert not await retry_later(session, Checkin, stale, at=NOW + timedelta(days=1))
    row = await stored(database, job_id)
    assert (row.state, row.attempts, row.lease_until, row.message_id) == (
        "pending",
        2,
        NOW + 2 * LEASE,
        None,
    )
    async with database.transaction() as session:
        assert await finish(session, Checkin, current, JobState.DONE, message_id=42)
    row = await stored(database, job_id)
    assert (row.state, row.lease_until, row.message_id) == ("done", None, 42)
    # Finished is final: the same claim cannot end it twice, nor can it be claimed again.
    async with database.transaction() as session:
        assert not await finish(session, Checkin, current, JobState.FAILED)
    assert (await stored(database, job_id)).state == "done"
    assert await claim(database, now=NOW + timedelta(days=30)) == []


async def test_retry_later_hands_the_job_back_from_a_time(database: Database) -> None:
    (job_id,) = await add_jobs(database, {})
    (job,) = await claim(database)
    back = NOW + timedelta(minutes=30)
    async with database.transaction() as session:
        assert await retry_later(session, Checkin, job, at=back, due_at=back)
    row = await stored(database, job_id)
    assert (row.state, row.lease_until, row.due_at, row.attempts) == ("pending", back, back, 1)
    assert await claim(database, now=back - timedelta(seconds=1)) == []
    (again,) = await claim(database, now=back)
    assert (again.id, again.attempts) == (job_id, 2)


async def test_the_limit_is_respected_across_many_rows(database: Database) -> None:
    ids = await add_jobs(database, *({"due_at": NOW - timedelta(seconds=i)} for i in range(30)))
    batches = []
    for _ in range(10):  # bounded: a claim that ignored leases would never run dry
        batch = await claim(database, limit=7)
        if not batch:
            break
        batches.append([job.id for job in batch])
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    # Oldest first across batches: the ids were inserted newest-due first.
    assert [job_id for b in batches for job_id in b] == list(reversed(ids))


async def test_concurrent_claimers_never_share_a_job(database: Database) -> None:
    ids = await add_jobs(
        database, *({"due_at": NOW - timedelta(seconds=i % 7)} for i in range(240))
    )
    first, second = Database(database.url), Database(database.url)

    async def claimer(db: Database) -> list[int]:
        got: list[int] = []
        for _ in range(100):  # bounded: 240 rows take at most 27 batches of 9
            async with db.transaction() as session:
                batch = await claim_due(session, Checkin, now=NOW, lease=LEASE, limit=9)
                await asyncio.sleep(0)  # hold the transaction open while the other one runs
            if not batch:
                break
            got.extend(job.id for job in batch)
        return got

    try:
        a, b = await asyncio.gather(claimer(first), claimer(second))
    finally:
        await first.dispose()
        await second.dispose()
    assert not set(a) & set(b)
    assert len(a) + len(b) == len(ids)
    assert sorted(a + b) == sorted(ids)
    async with database.read() as session:
        attempts = set(await session.scalars(select(Checkin.attempts)))
    assert attempts == {1}


async def test_postgres_claimers_skip_locked_rows_instead_of_waiting(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite admits one writer at a time (BEGIN IMMEDIATE); nothing to skip")
    ids = await add_jobs(database, *({"due_at": NOW - timedelta(seconds=i)} for i in range(10)))
    holder, other = Database(database.url), Database(database.url)
    claimed = asyncio.Event()
    release = asyncio.Event()

    async def hold_claim() -> list[int]:
        async with holder.transaction() as session:
            batch = await claim_due(session, Checkin, now=NOW, lease=LEASE, limit=4)
            claimed.set()
            await release.wait()  # still uncommitted: its rows stay locked
        return [job.id for job in batch]

    try:
        holding = asyncio.create_task(hold_claim())
        await claimed.wait()
        async with other.transaction() as session:
            second = await asyncio.wait_for(
                claim_due(session, Checkin, now=NOW, lease=LEASE, limit=100), timeout=10
            )
        release.set()
        first = await holding
    finally:
        release.set()
        await holder.dispose()
        await other.dispose()
    assert first == list(reversed(ids))[:4]
    assert [job.id for job in second] == list(reversed(ids))[4:]


# --- a pace shared by every process -------------------------------------------------------------


async def reserve(database: Database, count: int, wall_now: float, key: str = "pace") -> float:
    async with database.transaction() as session:
        return await reserve_slots(session, key, count, per_second=10.0, wall_now=wall_now)


async def test_reserved_slots_are_consecutive_and_never_overlap(database: Database) -> None:
    assert await reserve(database, 5, 1000.0) == 1000.0  # then busy until 1000.5
    assert await reserve(database, 3, 1000.1) == 1000.5  # then busy until 1000.8
    assert await reserve(database, 1, 1000.2) == 1000.8
    # A clock that went backwards never gets an earlier window than the ones handed out.
    assert await reserve(database, 1, 900.0) == 1000.9
    # Idle for a while: the next window starts now, not in the past.
    assert await reserve(database, 2, 2000.0) == 2000.0
    assert await reserve(database, 1, 2000.0) == 2000.2
    async with database.read() as session:
        row = await session.get(AppState, "pace")
        assert row is not None and float(row.value) == pytest.approx(2000.3)


async def test_slot_keys_are_independent(database: Database) -> None:
    assert await reserve(database, 50, 1000.0, key="a") == 1000.0
    assert await reserve(database, 1, 1000.0, key="b") == 1000.0
    assert await reserve(database, 1, 1000.0, key="a") == 1005.0


async def test_concurrent_reservations_split_the_time(database: Database) -> None:
    dbs = [Database(database.url) for _ in range(2)]
    counts = [1, 2, 3, 4, 5, 6, 7, 8] * 2

    async def one(index: int, count: int) -> tuple[float, int]:
        async with dbs[index % 2].transaction() as session:
            start = await reserve_slots(session, "pace", count, per_second=10.0, wall_now=500.0)
            await asyncio.sleep(0)
        return start, count

    try:
        windows = sorted(await asyncio.gather(*(one(i, c) for i, c in enumerate(counts))))
    finally:
        for db in dbs:
            await db.dispose()
    assert windows[0][0] == 500.0
    for (start, count), (next_start, _) in itertools.pairwise(windows):
        assert next_start == start + count / 10.0
    last_start, last_count = windows[-1]
    assert last_start + last_count / 10.0 == pytest.approx(500.0 + sum(counts) / 10.0)


async def test_the_backlog_counts_what_could_be_claimed_now_and_is_not(database: Database) -> None:
    hour = timedelta(hours=1)
    await add_jobs(
        database,
        {"due_at": NOW - hour},  # due, unclaimed: backlog
        {"due_at": NOW - hour, "lease_until": NOW - timedelta(seconds=1)},  # lease ran out: too
        {"due_at": NOW - hour, "lease_until": NOW + hour},  # on its way, or held back
        {"due_at": NOW + hour},  # not due yet
        {"due_at": NOW - hour, "state": JobState.DONE},
    )
    async with database.read() as session:
        assert await count_due(session, Checkin, now=NOW) == 2
    await claim(database, limit=1)
    async with database.read() as session:
        assert await count_due(session, Checkin, now=NOW) == 1
