"""Which members used the bot in which server, and the counts /stats shows moderators.

A member counts for a server once they wrote something through the bot there (a reflection,
a decision, a setting), not by the server's member list, which the bot never asks for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from advice.stats import ServerStats
from db._sql import Prebuilt, insert_for, table_of
from db.checkins import PlanStatus
from db.models import CheckinPlan, Decision, GuildMember, Reflection
from db.users import LOCK_USER, USERS, locked_users, user_upsert

GUILD_MEMBERS = table_of(GuildMember)
RECORD_MEMBER = Prebuilt(
    lambda dialect: (
        insert_for(dialect)(GUILD_MEMBERS)
        .values(
            guild_id=bindparam("guild_id"),
            user_id=bindparam("user_id"),
            first_seen_at=bindparam("now"),
        )
        .on_conflict_do_nothing()
    )
)


def _lock_and_record(dialect: str) -> Any:
    """PostgreSQL: steps 1 and 2 of db.locks in one statement (one round trip, not two): the
    member's row locked as db.users.lock_user locks it, then their membership recorded.

    The order is kept: the membership's source waits for an aggregate over the lock's
    RETURNING, so the users row is inserted or locked to the end before the guild_members
    row is touched. (A data-modifying WITH that nothing reads runs after the main statement.)
    """
    columns = GUILD_MEMBERS.c
    locked = user_upsert(dialect).returning(USERS.c.id).cte("locked")
    lock_taken = select(func.count()).select_from(locked).scalar_subquery()
    membership = select(
        bindparam("guild_id", type_=columns.guild_id.type),
        bindparam("id", type_=columns.user_id.type),
        bindparam("now", type_=columns.first_seen_at.type),
    ).where(lock_taken >= literal_column("0"))
    return (
        insert_for(dialect)(GUILD_MEMBERS)
        .from_select(["guild_id", "user_id", "first_seen_at"], membership)
        .on_conflict_do_nothing()
    )


LOCK_AND_RECORD_MEMBER = Prebuilt(_lock_and_record)


async def remember_member(
    session: AsyncSession, *, guild_id: int, user_id: int, now: datetime
) -> None:
    """That the member used the bot in this server, after their row is locked (first, as
    db.locks orders it; free when this transaction locked it already)."""
    connection = await session.connection()
    locked = locked_users(session)
    if user_id in locked:
        await connection.execute(
            RECORD_MEMBER.on(connection), {"guild_id": guild_id, "user_id": user_id, "now": now}
        )
        return
    await lock_and_remember(connection, user_id=user_id, guild_id=guild_id, now=now)
    locked.add(user_id)


async def lock_and_remember(
    connection: AsyncConnection, *, user_id: int, guild_id: int | None, now: datetime
) -> None:
    """Steps 1 and 2 of db.locks, first in a transaction: the member's row, created on first
    use, locked (db.users.lock_user); then, when they wrote in a server (`guild_id`), that
    they used the bot there. One statement on PostgreSQL."""
    if guild_id is not None and connection.dialect.name == "postgresql":
        values: dict[str, int | datetime] = {"guild_id": guild_id, "id": user_id, "now": now}
        await connection.execute(LOCK_AND_RECORD_MEMBER.on(connection), values)
        return
    await connection.execute(LOCK_USER.on(connection), {"id": user_id, "now": now})
    if guild_id is not None:
        await connection.execute(
            RECORD_MEMBER.on(connection), {"guild_id": guild_id, "user_id": user_id, "now": now}
        )


async def server_stats(session: AsyncSession, guild_id: int) -> ServerStats:
    """Counts of members (never their text or names) for one server."""
    members = select(GuildMember.user_id).where(GuildMember.guild_id == guild_id)
    total = await session.scalar(select(func.count()).select_from(members.subquery()))
    reflected = await session.execute(
        select(Reflection.point, func.count(func.distinct(Reflection.user_id)))
        .where(Reflection.user_id.in_(members))
        .group_by(Reflection.point)
    )
    checkins = await session.scalar(
        select(func.count())
        .select_from(CheckinPlan)
        .where(
            CheckinPlan.user_id.in_(members),
            CheckinPlan.status.in_([PlanStatus.ACTIVE, PlanStatus.PAUSED]),
        )
    )
    # Each member's latest decision: where they stand now, not every time they wondered.
    latest = (
        select(func.max(Decision.id))
        .where(Decision.user_id.in_(members))
        .group_by(Decision.user_id)
    )
    leanings = await session.execute(
        select(Decision.leaning, func.count())
        .where(Decision.id.in_(latest))
        .group_by(Decision.leaning)
    )
    return ServerStats(
        members=total or 0,
        reflected={point: count for point, count in reflected},
        checkins=checkins or 0,
        leanings={leaning: count for leaning, count in leanings},
    )
