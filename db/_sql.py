"""SQL that differs by dialect, in one place."""

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import ConcurrentChange

T = TypeVar("T")


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT (upserts, insert-or-ignore) on either database."""
    # Imported on first use: the PostgreSQL dialect's package costs a bot on SQLite 2 MiB.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


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
