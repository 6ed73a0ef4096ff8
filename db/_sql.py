"""SQL that differs by dialect, in one place."""

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import ConcurrentChange

T = TypeVar("T")


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT (upserts, insert-or-ignore) on either database."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return (postgresql.insert if postgres else sqlite.insert)(table)


async def locked_row(session: AsyncSession, model: type[T], where: Any, **values: Any) -> T:
    """The row `where` selects, inserted with `values` first if missing, locked (on PostgreSQL;
    SQLite's BEGIN IMMEDIATE already holds the database) until the transaction ends."""
    await session.execute(dialect_insert(session, model).values(**values).on_conflict_do_nothing())
    row = await session.scalar(
        select(model).where(where).with_for_update().execution_options(populate_existing=True)
    )
    if row is None:  # deleted by another transaction between the insert and the lock
        raise ConcurrentChange()
    return row
