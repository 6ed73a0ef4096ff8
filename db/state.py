"""Key/value facts about the running bot that must survive a restart."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AppState


async def get_state(session: AsyncSession, key: str) -> str | None:
    row = await session.get(AppState, key)
    return row.value if row else None


async def set_state(session: AsyncSession, key: str, value: str, *, now: datetime) -> None:
    await session.merge(AppState(key=key, value=value, updated_at=now))
