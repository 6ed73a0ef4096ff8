"""Everything stored about one member: a summary, a full export, and forgetting it all."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import TextCipher
from db.decisions import decision_history
from db.journal import recent_entries
from db.locks import LOCK_ORDER
from db.models import Base, Decision, GuildMember, Reflection, User

EXPORT_FORMAT = 1


@dataclass(frozen=True)
class DataSummary:
    known: bool  # False when nothing at all is stored
    timezone: str | None
    journey_started_at: datetime | None
    reflections: int
    points_covered: int
    decisions: int
    first_at: datetime | None
    last_at: datetime | None


async def summarize(session: AsyncSession, *, user_id: int) -> DataSummary:
    user = await session.get(User, user_id)
    count, points, first, last = (
        await session.execute(
            select(
                func.count(Reflection.id),
                func.count(Reflection.point.distinct()),
                func.min(Reflection.created_at),
                func.max(Reflection.created_at),
            ).where(Reflection.user_id == user_id)
        )
    ).one()
    decisions = await session.scalar(
        select(func.count(Decision.id)).where(Decision.user_id == user_id)
    )
    return DataSummary(
        known=user is not None,
        timezone=user.timezone if user else None,
        journey_started_at=user.journey_started_at if user else None,
        reflections=count,
        points_covered=points,
        decisions=decisions or 0,
        first_at=first,  # min/max keep the column's type, so these come back aware UTC
        last_at=last,
    )


async def has_encrypted_text(session: AsyncSession) -> bool:
    """Whether anyone's writing is stored (so the encryption key must not change)."""
    reflection = await session.scalar(select(Reflection.id).limit(1))
    decision = await session.scalar(
        select(Decision.id).where(Decision.reason.is_not(None)).limit(1)
    )
    return reflection is not None or decision is not None


async def export(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, now: datetime
) -> dict[str, Any]:
    """All of the member's data as plain JSON-ready values (decrypted: it is theirs)."""
    user = await session.get(User, user_id)
    entries = await recent_entries(session, cipher, user_id=user_id, limit=None)
    stances = await decision_history(session, cipher, user_id=user_id)
    servers = await session.execute(
        select(GuildMember.guild_id, GuildMember.first_seen_at)
        .where(GuildMember.user_id == user_id)
        .order_by(GuildMember.first_seen_at)
    )
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now.isoformat(),
        "user": {
            "id": str(user_id),
            "timezone": user.timezone if user else None,
            "created_at": user.created_at.isoformat() if user else None,
            "journey_started_at": user.journey_started_at.isoformat()
            if user and user.journey_started_at
            else None,
        },
        "reflections": [
            {
                "id": entry.id,
                "point": entry.point,
                "kind": entry.kind.value,
                "text": entry.text,
                "comfort": entry.comfort,
                "created_at": entry.created_at.isoformat(),
                "edited_at": entry.edited_at.isoformat() if entry.edited_at else None,
            }
            for entry in reversed(entries)
        ],
        "decisions": [
            {
                "leaning": stance.leaning.label,
                "reason": stance.reason,
                "created_at": stance.created_at.isoformat(),
            }
            for stance in stances
        ],
        # Only so /stats can count them there; never a name or anything they wrote.
        "servers_used_in": [
            {"id": str(guild_id), "first_used_at": first.isoformat()} for guild_id, first in servers
        ],
    }


async def forget(session: AsyncSession, *, user_id: int) -> int:
    """Delete every row tied to the member, in every table; returns how many went.

    Everything that existed when it locked the member's row goes; a reflection saved after
    that is kept, under a fresh record. Walks the metadata rather than naming tables, so a
    table added later with a `user_id` column is covered without anyone remembering it here.
    """
    # The member's row first: a write for them that comes in meanwhile waits for this to end
    # and then starts a fresh record (db.users.ensure_user), instead of failing.
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    removed = 0
    for table in member_tables():
        removed += _rowcount(await session.execute(delete(table).where(table.c.user_id == user_id)))
    return removed + _rowcount(await session.execute(delete(User).where(User.id == user_id)))


def member_tables() -> list[Table]:
    """Every table with a member's rows (a `user_id` column), in the lock order of db.locks
    (servers used in, plan, check-ins, then the writing); tables added later come after."""
    tables = [t for t in Base.metadata.sorted_tables if "user_id" in t.c]
    return sorted(tables, key=lambda t: LOCK_ORDER.index(t.name) if t.name in LOCK_ORDER else 99)


def _rowcount(result: Result[Any]) -> int:
    # DELETE always yields a cursor result; typing only knows the general Result.
    return cast(CursorResult[Any], result).rowcount or 0
