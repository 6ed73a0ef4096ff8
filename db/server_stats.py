"""Which members used the bot in which server, and the counts /stats shows moderators.

A member counts for a server once they wrote something through the bot there (a reflection,
a decision, a setting), not by the server's member list, which the bot never asks for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from advice.stats import ServerStats
from db._sql import Prebuilt, insert_for, table_of
from db.checkins import PlanStatus
from db.models import CheckinPlan, Decision, GuildMember, Reflection
from db.users import lock_user

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


async def remember_member(
    session: AsyncSession, *, guild_id: int, user_id: int, now: datetime
) -> None:
    await lock_user(session, user_id, now=now)  # free when the caller locked it already
    connection = await session.connection()
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
