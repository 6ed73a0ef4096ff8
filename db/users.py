"""Members as the bot knows them: an id, a time zone, when their journey began."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db._sql import dialect_insert
from db.models import User


async def ensure_user(session: AsyncSession, user_id: int, *, now: datetime) -> User:
    """The member's row, created on first use.

    Insert-or-ignore, not read-then-insert: two first writes of a new member (a double
    submit, /decide during /reflect) race on PostgreSQL, and the loser must not fail.
    """
    user = await session.get(User, user_id)
    if user is None:
        insert = dialect_insert(session, User).values(id=user_id, created_at=now)
        await session.execute(insert.on_conflict_do_nothing())
        user = await session.get(User, user_id, populate_existing=True)
        assert user is not None
    return user


async def member_timezone(session: AsyncSession, user_id: int) -> str | None:
    user = await session.get(User, user_id)
    return user.timezone if user else None
