"""SQL that differs by dialect, in one place; statements built once."""

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.database import ConcurrentChange

T = TypeVar("T")
S = TypeVar("S")


def insert_for(dialect: str) -> Callable[[Any], Any]:
    """The dialect's INSERT, which knows ON CONFLICT (upserts, insert-or-ignore)."""
    # Imported on first use: the PostgreSQL dialect's package costs a bot on SQLite 2 MiB.
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT (upserts, insert-or-ignore) on either database."""
    return insert_for(session.get_bind().dialect.name)(table)


def table_of(model: Any) -> Table:
    """A model's table, for Core statements (no ORM bookkeeping)."""
    return cast(Table, model.__table__)


class Prebuilt(Generic[S]):
    """A statement built once per dialect, at its first use, from `build(dialect name)`. Hot
    paths use these: building a statement costs SQLAlchemy more than running it, and a
    statement used again keeps its cache key."""

    def __init__(self, build: Callable[[str], S]) -> None:
        self._build = build
        self._built: dict[str, S] = {}

    def on(self, connection: AsyncConnection) -> S:
        name = connection.dialect.name
        built = self._built.get(name)
        if built is None:
            built = self._built[name] = self._build(name)
        return built


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
