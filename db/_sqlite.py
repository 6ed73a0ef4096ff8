"""SQLite connections that run each statement on the event loop, never waiting on it.

A statement on SQLite takes microseconds: less than a hop to a worker thread and back, which
aiosqlite makes four times a statement (cursor, execute, fetch, close). So SQLAlchemy's
aiosqlite adapter drives these connections instead (``create_async_engine(async_creator=)``,
the aiosqlite interface it uses): each statement runs at once, whole, where it is awaited.

What could make a statement wait is kept off the loop:

* locks: the connection's busy timeout is 0, so a statement that finds the database locked
  (another process writing) fails at once; it is retried after an asynchronous sleep, with
  SQLite's own back-off, until the busy timeout has passed (then "database is locked", as
  before). A statement that fails so has done nothing, so running it again is safe.
* checkpoints: SQLite copies the write-ahead log into the database file (and syncs it) at the
  commit that takes the log past 1,000 pages. Automatic checkpoints are off; the commit that
  grows the log past that size starts one in a worker thread instead, one at a time.
* opening and closing a connection (files, and a log to replay after a crash): in a thread.
"""

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

# SQLite's default busy handler sleeps these (ms) between tries, then 100 ms at a time.
_BACKOFF_MS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50)
_BACKOFF_THEN_MS = 100
# A checkpoint is started when the log passes this size (SQLite's own default: 1,000 pages).
CHECKPOINT_BYTES = 1000 * 4096
STATEMENTS_KEPT = 48


class Cursor:
    """One statement, run whole: its rows are read before the statement returns."""

    arraysize = 1

    def __init__(self, connection: "Connection") -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> "Cursor":
        return self

    async def __aexit__(self, *_: object) -> None:
        self._rows = []

    def _run(self, operation: str, parameters: Any, many: bool) -> None:
        cursor = self._connection.raw.cursor()
        try:
            if many:
                cursor.executemany(operation, parameters)
            else:
                cursor.execute(operation, () if parameters is None else parameters)
            self.description = cursor.description
            self._rows = cursor.fetchall() if cursor.description else []
            self.rowcount = cursor.rowcount
            self.lastrowid = cursor.lastrowid
        finally:
            cursor.close()

    async def execute(self, operation: str, parameters: Any = None) -> "Cursor":
        await self._connection.run(self._run, operation, parameters, False)
        return self

    async def executemany(self, operation: str, parameters: Sequence[Any]) -> "Cursor":
        await self._connection.run(self._run, operation, parameters, True)
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def close(self) -> None:
        self._rows = []


class Connection:
    """The part of aiosqlite's Connection that SQLAlchemy's adapter uses."""

    def __init__(self, raw: sqlite3.Connection, connector: "Connector") -> None:
        self._raw: sqlite3.Connection | None = raw
        self._connector = connector

    @property
    def raw(self) -> sqlite3.Connection:
        if self._raw is None:
            raise ValueError("no active connection")
        return self._raw

    # SQLAlchemy's adapter reads these two names of aiosqlite's.
    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._raw

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.raw

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` now; again after a pause while the database is locked."""
        waited_ms, tries = 0, 0
        while True:
            try:
                return function(*args)
            except sqlite3.OperationalError as error:
                code = getattr(error, "sqlite_errorcode", None)
                # Only a lock found taken: BUSY_SNAPSHOT (a stale read turned write) is not.
                if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_RECOVERY):
                    raise
                if waited_ms >= self._connector.busy_timeout_ms:
                    raise
            pause = _BACKOFF_MS[tries] if tries < len(_BACKOFF_MS) else _BACKOFF_THEN_MS
            pause = min(pause, self._connector.busy_timeout_ms - waited_ms)
            tries += 1
            waited_ms += pause
            await asyncio.sleep(pause / 1000)

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def execute(self, operation: str, parameters: Any = None) -> Cursor:
        return await self.cursor().execute(operation, parameters)

    async def commit(self) -> None:
        await self.run(self.raw.commit)
        self._connector.after_commit()

    async def rollback(self) -> None:
        await self.run(self.raw.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)

    async def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            await asyncio.to_thread(raw.close)

    def stop(self) -> None:
        """Close at once, from anywhere (SQLAlchemy's terminate)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()


class Connector:
    """Opens the connections of one database (``async_creator``) and checkpoints its log."""

    def __init__(self, url: URL, *, busy_timeout_ms: int, pragmas: Sequence[str]) -> None:
        # SQLAlchemy's reading of the URL: a file: URI (uri=true) with its own query, or a path.
        args, options = SQLiteDialect_aiosqlite().create_connect_args(url)
        self._database: str = args[0]
        self._uri = bool(options.get("uri"))
        self.busy_timeout_ms = busy_timeout_ms
        self._pragmas = tuple(pragmas)
        self._wal = None if self._uri or not url.database else f"{url.database}-wal"
        self._wal_seen = 0
        self._checkpoint: asyncio.Task[None] | None = None

    async def __call__(self) -> Connection:
        return Connection(await asyncio.to_thread(self._open), self)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._database,
            timeout=self.busy_timeout_ms / 1000,  # while opening, in a thread
            isolation_level=None,
            check_same_thread=False,  # opened in a thread, used on the loop
            uri=self._uri,
            # Prepared statements kept per connection (each holds its compiled program): the
            # hot paths use a few dozen; pysqlite's default of 128 only holds more memory.
            cached_statements=STATEMENTS_KEPT,
        )

    def _open(self) -> sqlite3.Connection:
        raw = self._connect()
        try:
            for pragma in self._pragmas:
                raw.execute(f"PRAGMA {pragma}")
            raw.execute("PRAGMA wal_autocheckpoint=0")  # see after_commit
            raw.execute("PRAGMA busy_timeout=0")  # see Connection.run
        except BaseException:
            raw.close()
            raise
        return raw

    def after_commit(self) -> None:
        """Start a checkpoint in a thread when the log has grown past its size."""
        if self._wal is None or (self._checkpoint is not None and not self._checkpoint.done()):
            return
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return
        grown, self._wal_seen = size > self._wal_seen, size
        if grown and size >= CHECKPOINT_BYTES:
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_now())

    async def _checkpoint_now(self) -> None:
        try:
            await asyncio.to_thread(self._run_checkpoint)
        except (sqlite3.Error, OSError) as error:  # the next commit tries again
            log.warning("SQLite checkpoint failed: %s", error)

    def _run_checkpoint(self) -> None:
        raw = self._connect()
        try:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")  # waits for no reader or writer
        finally:
            raw.close()

    async def aclose(self) -> None:
        """Wait for a checkpoint under way (the engine is being disposed of)."""
        if self._checkpoint is not None:
            await asyncio.wait({self._checkpoint})
