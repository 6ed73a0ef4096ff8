"""Counting the SQL statements code sends, to show a batch costs the same whatever its size."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from db import Database


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The statements sent to `database` inside the block, in order (an executemany is one,
    as it is one round trip; SQLite's BEGIN IMMEDIATE is one too)."""
    issued: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        issued.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield issued
    finally:
        event.remove(engine, "before_cursor_execute", note)
