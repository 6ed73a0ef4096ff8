"""Timed jobs (DM check-ins, weekly posts): claimed with a lease, so each runs exactly once.

Any number of bot processes may share one database. A process claims due jobs in one
statement that also sets a lease; no other process can claim them until the lease passes,
so a job whose process died is taken over then. `attempts` doubles as a fencing token: a
process that finishes a job names the attempt it claimed, and a late finisher whose lease was
taken over changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db._sql import locked_row
from db.models import AppState, LeasedJob

Job = TypeVar("Job", bound=LeasedJob)


class JobState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # given up on; the reason is kept where the job's owner can see it
    CANCELLED = "cancelled"


async def claim_due(
    session: AsyncSession, model: type[Job], *, now: datetime, lease: timedelta, limit: int
) -> list[Job]:
    """Claim up to `limit` due jobs, oldest first, with a lease until `now + lease`.

    One statement: on PostgreSQL the candidate rows are locked with SKIP LOCKED, so concurrent
    claimers split the work instead of queueing on it; SQLite runs it under BEGIN IMMEDIATE
    (Database.transaction), which admits one writer at a time.
    """
    due = (
        select(model.id).where(_claimable(model, now)).order_by(model.due_at, model.id).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = await session.scalars(
        update(model)
        .where(model.id.in_(due.scalar_subquery()))
        .values(lease_until=now + lease, attempts=model.attempts + 1)
        .returning(model)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed, key=lambda job: (job.due_at, job.id))


async def count_due(session: AsyncSession, model: type[Job], *, now: datetime) -> int:
    """Jobs that could be claimed now and are not: the backlog an operator watches. (Not
    those on their way under a live claim, nor those held back: a retry's back-off, quiet
    hours, a pause.)"""
    return await session.scalar(select(func.count()).where(_claimable(model, now))) or 0


def _claimable(model: type[Job], now: datetime) -> ColumnElement[bool]:
    """Pending, due, and claimed by nobody (or by a process whose lease has run out)."""
    return and_(
        model.state == JobState.PENDING,
        model.due_at <= now,
        or_(model.lease_until.is_(None), model.lease_until <= now),
    )


def _held(model: type[Job], job: Job) -> ColumnElement[bool]:
    """Still ours: pending and claimed by this attempt (nobody took it over meanwhile)."""
    return and_(
        model.id == job.id,
        model.state == JobState.PENDING,
        model.attempts == job.attempts,
    )


async def finish(
    session: AsyncSession, model: type[Job], job: Job, state: JobState, **values: object
) -> bool:
    """End a claimed job; False (and nothing written) when another process took it over."""
    done = await session.scalar(
        update(model)
        .where(_held(model, job))
        .values(state=state, lease_until=None, **values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return done is not None


async def retry_later(
    session: AsyncSession, model: type[Job], job: Job, *, at: datetime, **values: object
) -> bool:
    """Hand a claimed job back, claimable again from `at` (a back-off, or a later hour)."""
    done = await session.scalar(
        update(model)
        .where(_held(model, job))
        .values(lease_until=at, **values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return done is not None


async def reserve_slots(
    session: AsyncSession, key: str, count: int, *, per_second: float, wall_now: float
) -> float:
    """The first of `count` request slots under a rate shared by every process on the database.

    Discord's global limit counts the bot's requests from all its processes together, so the
    pace is kept in one row that every claimer locks and advances. Wall-clock seconds (not the
    injected clock): Discord measures its limit in real seconds, whatever time tests pretend.
    """
    now = datetime.fromtimestamp(wall_now, UTC)
    row = await locked_row(
        session, AppState, AppState.key == key, key=key, value="0", updated_at=now
    )
    start = max(float(row.value), wall_now)
    row.value = repr(start + count / per_second)
    row.updated_at = now
    return start
