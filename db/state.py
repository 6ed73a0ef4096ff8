"""Key/value facts about the running bot that must survive a restart."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db._sql import dialect_insert
from db.models import AppState


async def get_state(session: AsyncSession, key: str) -> str | None:
    row = await session.get(AppState, key)
    return row.value if row else None


async def set_state(session: AsyncSession, key: str, value: str, *, now: datetime) -> None:
    """Insert or overwrite in one statement: several processes starting together may all
    write the same key (the synced command hash), and a read-then-insert would fail one."""
    statement = dialect_insert(session, AppState).values(key=key, value=value, updated_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[AppState.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
