"""Engine, sessions and transactions for SQLite (default) and PostgreSQL."""

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.exc import StaleDataError

from advice.errors import UserFacingError
from db._sqlite import Connector
from db.models import use_dialect

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
# Under Discord's three seconds to answer an interaction: an unreachable server must leave
# time to tell the member so.
POSTGRES_CONNECT_TIMEOUT_S = 2
# What a read before an interaction's first answer may take, connecting included; past it the
# member is told storage is unavailable while there is still time to answer at all.
BEFORE_ANSWER_S = 2.0

# Raised by the driver (wrapped by SQLAlchemy) when the database is gone, read-only, locked for
# too long or unreachable.
_UNAVAILABLE = (OperationalError, InterfaceError)
# PostgreSQL's "another transaction got in the way" (SQLSTATE): a deadlock, a serialization
# failure. The lock order (db.locks) keeps a member's own actions from deadlocking; these
# remain possible between the bot's writes of different kinds, and are answered the same way.
_CONFLICT_STATES = frozenset({"40P01", "40001"})


def _lost_a_race(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the write may succeed if run again."""
    orig = getattr(exc, "orig", None)
    return any(
        getattr(error, attribute, None) in _CONFLICT_STATES
        for error in (orig, getattr(orig, "__cause__", None))
        for attribute in ("sqlstate", "pgcode")
    )


@dataclass(frozen=True)
class PoolUse:
    """Connections checked out of the pool now, and how many it keeps open."""

    in_use: int
    size: int


class DatabaseConfigError(Exception):
    """DATABASE_URL cannot be used; the message is one line for the operator."""


class StorageUnavailable(UserFacingError):
    """The database refused or lost a transaction; nothing of it was saved."""

    def __init__(self) -> None:
        super().__init__(
            "Crossroads can't reach its storage right now, so nothing was saved. "
            "Please try again in a few minutes."
        )


class ConcurrentChange(UserFacingError):
    """Another transaction changed or deleted what this one was about to use (a member's
    /mydata forget meeting their own write, say); this one was rolled back.

    `retryable`: it lost a deadlock or a serialization failure, so running it again may well
    succeed (the framework does, once, when nothing was answered yet); otherwise what it
    needed is gone or already there, and the member is told."""

    def __init__(self, *, retryable: bool = False) -> None:
        super().__init__(
            "That changed at the same moment from somewhere else, so nothing was saved. "
            "Please try again."
        )
        self.retryable = retryable


def parse_database_url(raw: str) -> URL:
    """Check DATABASE_URL names a driver this bot ships with."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"DATABASE_URL is not a database URL ({exc})") from None
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise DatabaseConfigError(
            "DATABASE_URL must start with sqlite+aiosqlite:/// or postgresql+asyncpg://, "
            f"not {url.drivername}://"
        )
    if url.drivername.startswith("sqlite") and not url.database:
        raise DatabaseConfigError("DATABASE_URL names no SQLite file (in-memory is not kept)")
    return url


class Database:
    """Owns the engine. Use `transaction()` for writes, `read()` for reads."""

    def __init__(self, url: str | URL) -> None:
        self.url = url if isinstance(url, URL) else parse_database_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        use_dialect(self.url.get_backend_name())
        if self.is_sqlite:
            if not self.url.query.get("uri"):  # a file: URI names its own path
                if not self.url.database:
                    raise DatabaseConfigError("DATABASE_URL names no SQLite file")
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self._connector: Connector | None = Connector(
                self.url, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, pragmas=SQLITE_PRAGMAS
            )
            self.engine: AsyncEngine = create_async_engine(self.url, async_creator=self._connector)
            path = None if self.url.query.get("uri") else self.url.database
            _configure_sqlite(self.engine, Path(path) if path else None)
        else:
            self._connector = None
            # asyncpg waits a minute by default; an unreachable server should fail a command
            # in seconds, with the member's text handed back, not hang it.
            self.engine = create_async_engine(
                self.url, connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S}
            )
            _configure_postgres(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # On SQLite the begin listener reads crossroads_write to choose BEGIN IMMEDIATE, and a
        # read is a deferred transaction: one snapshot for all its statements. PostgreSQL's
        # READ COMMITTED gives each statement a snapshot of its own anyway, so a read runs
        # each statement by itself (autocommit), without the BEGIN and ROLLBACK round trips.
        self._write_options: dict[str, Any] = {"crossroads_write": True}
        self._read_options: dict[str, Any] = {"crossroads_write": False}
        if not self.is_sqlite:
            self._read_options["isolation_level"] = "AUTOCOMMIT"
        self._write_engine = self.engine.execution_options(**self._write_options)
        # SQLite has one writer at a time, and its busy-wait is not first come, first served:
        # under eight concurrent writes, one could lose every retry for the whole busy timeout
        # (bench/memory.py saw "database is locked"). Writers of this process queue here
        # instead, in order; BEGIN IMMEDIATE's busy timeout is left for other processes.
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else contextlib.nullcontext()

    @property
    def display_url(self) -> str:
        """The URL without its password; an SQLite path made absolute, so the log says where."""
        if self.is_sqlite and self.url.database and not self.url.query.get("uri"):
            return f"sqlite:///{Path(self.url.database).resolve()}"
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: commits on success, rolls back on any error."""
        async with self._session(write=True) as session:
            yield session

    @asynccontextmanager
    async def read(self, *, within: float | None = None) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (on SQLite a deferred transaction, so readers never queue;
        on PostgreSQL its statements in autocommit: each read committed, as in a transaction).

        `within` bounds it, connecting included (BEFORE_ANSWER_S for a read that must end
        before an interaction can be answered); past it, StorageUnavailable.
        """
        async with self._session(write=False, within=within) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """transaction() as a Core connection, without the ORM Session (its bookkeeping costs
        a transaction about 0.4 ms of CPU): for hot paths whose statements are all Core."""
        async with (
            self._told() as unit,
            self._sqlite_writer,
            self._write_engine.begin() as connection,
        ):
            unit.in_caller = True
            yield connection
            unit.in_caller = False

    @asynccontextmanager
    async def _session(
        self, *, write: bool, within: float | None = None
    ) -> AsyncIterator[AsyncSession]:
        deadline = asyncio.timeout(within)
        async with (
            self._told(deadline) as unit,
            deadline,
            self._sqlite_writer if write else contextlib.nullcontext(),
            self._sessions() as session,
            session.begin(),
        ):
            await session.connection(
                execution_options=self._write_options if write else self._read_options
            )
            unit.in_caller = True
            yield session
            unit.in_caller = False

    @asynccontextmanager
    async def _told(self, deadline: asyncio.Timeout | None = None) -> AsyncIterator["_Unit"]:
        """The database's errors in a unit of work, as the member is told them."""
        unit = _Unit()
        try:
            yield unit
        except StaleDataError as exc:  # a row this write changes was deleted under it
            log.warning("a write lost to a concurrent one: %s", _first_line(exc))
            raise ConcurrentChange() from exc
        except DBAPIError as exc:
            # A constraint a concurrent write already satisfied, or a row it deleted (a
            # member's own /mydata forget meeting their write): told, not retried.
            if isinstance(exc, IntegrityError) or _lost_a_race(exc):
                log.warning("a write lost to a concurrent one: %s", _first_line(exc))
                raise ConcurrentChange(retryable=_lost_a_race(exc)) from exc
            if isinstance(exc, _UNAVAILABLE) or exc.connection_invalidated:
                log.error("database unavailable (%s): %s", self.display_url, _first_line(exc))
                raise StorageUnavailable() from exc
            raise
        except (OSError, TimeoutError) as exc:
            # Connecting, beginning or committing failed (a refused connection, a connect
            # timeout), or a bounded read ran out of time. The same errors from the caller's
            # own code (a Discord request, a file) are not the database's, and pass through.
            if unit.in_caller and not (deadline is not None and deadline.expired()):
                raise
            log.error("database unavailable (%s): %s", self.display_url, _first_line(exc))
            raise StorageUnavailable() from exc

    async def ping(self, *, within: float) -> None:
        """Ask the database for an answer within `within` seconds, or StorageUnavailable."""
        async with self.read(within=within) as session:
            await session.execute(text("SELECT 1"))

    def pool_use(self) -> PoolUse | None:
        """How much of the connection pool is in use (None for a pool that does not say)."""
        pool = self.engine.pool
        checked_out, size = getattr(pool, "checkedout", None), getattr(pool, "size", None)
        if not (callable(checked_out) and callable(size)):
            return None
        return PoolUse(in_use=int(checked_out()), size=int(size()))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._connector is not None:
            await self._connector.aclose()


class _Unit:
    """A unit of work: while the caller's block runs, its own errors are its own."""

    in_caller = False


# Set on every SQLite connection as it opens (db._sqlite, which also keeps its waits off the
# event loop: the busy timeout above is honoured there, asynchronously).
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "foreign_keys=ON",
    "synchronous=NORMAL",
    # Each connection's own page cache (SQLite's default is 2 MB, filled as pages are read,
    # in every pooled connection): the operating system's file cache serves reads as well,
    # outside the bot's memory.
    "cache_size=-256",
)


# SQLite's words for a file it cannot write (read-only, or its disk failing): a connection
# that met one is replaced, as after a lost server connection.
_SQLITE_FILE_TROUBLE = ("readonly database", "disk i/o error")


def _configure_sqlite(engine: AsyncEngine, path: Path | None) -> None:
    """BEGIN IMMEDIATE for writes, and a file that was read-only for a while never leaves the
    bot read-only.

    Connections are opened with pysqlite's own transaction handling switched off
    (isolation_level=None), so that SQLAlchemy's begin event decides how each transaction
    starts: a write that starts with BEGIN IMMEDIATE takes the lock up front instead of
    failing halfway on upgrade.

    A file read-only for a while (a full disk remounted, a backup tool's lock, an operator's
    chmod): SQLite opens it read-only and keeps it so for the connection's life, so a
    connection opened meanwhile is replaced at its first checkout once the file can be
    written, and any connection that fails a write on the file is replaced at once.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["opened_read_only"] = path is not None and not os.access(path, os.W_OK)

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("opened_read_only") and path and os.access(path, os.W_OK):
            raise DisconnectionError("the SQLite file is writable again; reopening")

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        problem = str(context.original_exception).lower()
        if any(words in problem for words in _SQLITE_FILE_TROUBLE):
            context.is_disconnect = True

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("crossroads_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _configure_postgres(engine: AsyncEngine) -> None:
    """A pooled connection the server closed (a restart, an idle timeout) is replaced when it
    is checked out, without a round trip: asyncpg knows a closed socket. (A ping on every
    checkout would cost each transaction a round trip.) One that dies unnoticed fails its
    statement, and SQLAlchemy invalidates it and the pool's older ones."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
