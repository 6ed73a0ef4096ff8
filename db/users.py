"""Members as the bot knows them: an id, a time zone, when their journey began."""

from datetime import datetime

from sqlalchemy import false
from sqlalchemy.ext.asyncio import AsyncSession

from db._sql import dialect_insert
from db.database import ConcurrentChange
from db.models import User


async def ensure_user(session: AsyncSession, user_id: int, *, now: datetime) -> User:
    """The member's row, created on first use and locked until the transaction ends.

    One upsert, so it always ends with a row, whoever else is at work:
    - two first writes of a new member (a double submit, /decide during /reflect) race on
      PostgreSQL, and the loser must not fail;
    - `/mydata forget` locks the row before deleting (see db.mydata.forget), so a write that
      comes in meanwhile waits, then finds the row gone and makes a fresh one; and a write
      that locked first is finished (and forgotten too) before forget deletes anything.
    ON CONFLICT DO UPDATE locks the row it conflicts with (a plain read would not), and when
    that row is deleted meanwhile PostgreSQL retries the insert. Its WHERE is false, so the
    row is locked but never rewritten. On SQLite, BEGIN IMMEDIATE already serialises writes.
    """
    insert = dialect_insert(session, User).values(id=user_id, created_at=now)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[User.id], set_={"created_at": insert.excluded.created_at}, where=false()
        )
    )
    user = await session.get(User, user_id, populate_existing=True)
    if user is None:  # inserted or locked just now; gone only if that reasoning broke
        raise ConcurrentChange()
    return user


async def member_timezone(session: AsyncSession, user_id: int) -> str | None:
    user = await session.get(User, user_id)
    return user.timezone if user else None
