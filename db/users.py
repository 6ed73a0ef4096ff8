"""Members as the bot knows them: an id, a time zone, when their journey began."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User


async def ensure_user(session: AsyncSession, user_id: int, *, now: datetime) -> User:
    """The member's row, created on first use."""
    user = await session.get(User, user_id)
    if user is None:
        user = User(id=user_id, created_at=now)
        session.add(user)
        await session.flush()
    return user
