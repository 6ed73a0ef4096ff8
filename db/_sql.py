"""SQL that differs by dialect, in one place; statements built once."""

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import DBAPIError
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


# --- BEGIN in the same round trip as a transaction's first statement (PostgreSQL) ---------------

# The isolation levels SQLAlchemy's asyncpg adapter begins with, as asyncpg spells BEGIN for
# them (None: the server's default, until the pool has once set a level on the connection).
_BEGIN: dict[str | None, str] = {
    None: "BEGIN",
    "read_committed": "BEGIN ISOLATION LEVEL READ COMMITTED",
    "repeatable_read": "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "serializable": "BEGIN ISOLATION LEVEL SERIALIZABLE",
}
_PLACEHOLDER = re.compile(r"\$(\d+)")
# By id, with the statement itself kept, so no other statement can come to have that id.
_INLINED: dict[int, tuple[Any, str, tuple[str, ...]]] = {}


class _BegunWithFirstStatement:
    """The transaction begin_with opened, ended as SQLAlchemy's asyncpg adapter ends the
    transactions it opens itself (it calls these two)."""

    __slots__ = ("_driver",)

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    async def commit(self) -> None:
        await self._driver.execute("COMMIT")

    async def rollback(self) -> None:
        await self._driver.execute("ROLLBACK")


async def execute_first(
    connection: AsyncConnection, statement: Any, values: Mapping[str, int | datetime]
) -> None:
    """Run `statement`, a write transaction's usual first (a member's lock): begun with it
    where begin_with applies, else as any."""
    if not await begin_with(connection, statement, values):
        await connection.execute(statement, values)


def _literal(value: object) -> str:
    """An id or an instant as SQL: the only values begin_with inlines, so nothing a member
    typed is ever part of its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return f"'{value.astimezone(UTC).isoformat()}'"
    raise TypeError(f"begin_with inlines ids and aware datetimes only, not {type(value)}")


async def begin_with(
    connection: AsyncConnection, statement: Any, values: Mapping[str, int | datetime]
) -> bool:
    """On PostgreSQL, BEGIN and `statement` in one message: a round trip fewer on every write
    transaction that starts with it (each one costs the bot a wake-up and the server a
    context switch, which on a busy machine is most of a command's time). asyncpg sends a
    statement without parameters as one simple query, several commands allowed, so the values
    are inlined: ids and instants only (_literal). Its results are not read.

    False, having run nothing, where it does not apply: SQLite, a transaction already begun,
    an autocommit read, or an asyncpg adapter whose insides are not the ones this knows (the
    caller then runs `statement` as usual, after SQLAlchemy's own BEGIN). SQLAlchemy commits
    or rolls back the transaction as one it began itself."""
    if connection.dialect.name != "postgresql":
        return False
    adapter: Any = (await connection.get_raw_connection()).dbapi_connection
    begin = _BEGIN.get(getattr(adapter, "isolation_level", "unknown"))
    mutex = getattr(adapter, "_execute_mutex", None)
    if (
        begin is None
        or mutex is None
        or getattr(adapter, "_transaction", True) is not None
        or getattr(adapter, "readonly", True)
        or getattr(adapter, "deferrable", True)
    ):
        return False
    template, names = _inlined(connection, statement)
    literals = [_literal(values[name]) for name in names]
    sql = f"{begin}; " + _PLACEHOLDER.sub(lambda m: literals[int(m.group(1)) - 1], template)
    driver = adapter.driver_connection
    async with mutex:
        # Marked begun before it is sent: whatever happens to it (an error, a cancellation
        # halfway), SQLAlchemy rolls back before the connection goes back to the pool, and a
        # ROLLBACK with nothing begun is only a warning.
        adapter._transaction = _BegunWithFirstStatement(driver)
        try:
            await driver.execute(sql)
            return True
        except Exception as error:
            failure = error
    told = _as_dbapi_error(connection, adapter, sql, failure)
    if isinstance(told, DBAPIError) and told.connection_invalidated:
        await connection.invalidate()  # as SQLAlchemy does with a connection found dead
    raise told from failure


def _inlined(connection: AsyncConnection, statement: Any) -> tuple[str, tuple[str, ...]]:
    """The statement's SQL with $n placeholders, and the names of the values they stand for.
    Compiled once: begin_with's statements are built once (Prebuilt)."""
    found = _INLINED.get(id(statement))
    if found is None:
        compiled = statement.compile(dialect=connection.dialect)
        names = tuple(compiled.positiontup or ())
        found = _INLINED[id(statement)] = (statement, compiled.string, names)
    return found[1], found[2]


def _as_dbapi_error(
    connection: AsyncConnection, adapter: Any, sql: str, error: Exception
) -> BaseException:
    """asyncpg's error as SQLAlchemy raises it for statements it runs (a DBAPIError whose
    orig has the SQLSTATE, marked when the connection is gone), so db.database tells a lost
    race or an outage the same way."""
    try:
        adapter._handle_exception(error)  # raises the adapter's translation
    except Exception as raised:
        translated: Any = raised
        dialect = connection.dialect
        told: BaseException = DBAPIError.instance(
            sql,
            None,
            translated,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(translated, adapter, None),
            dialect=dialect,
        )
        return told
    return error
