"""The benchmarks' own PostgreSQL database (reset for each use, never ``test``) and bulk
writes through the models' tables."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import Table, insert, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession

from db import Database
from db.models import Base

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench"


def postgres_dsn(url: URL) -> str:
    """asyncpg's form of a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def admin_dsn(url: URL) -> str:
    """asyncpg's form of the server's ``postgres`` database, to make and drop others."""
    return postgres_dsn(url.set(database="postgres"))


def own_database(parser: argparse.ArgumentParser, value: str) -> URL:
    """``--postgres-url``, which must name the benchmark's own database."""
    url = make_url(value)
    if url.database in (None, "test", "postgres"):
        parser.error("--postgres-url must name the benchmark's own database (not test)")
    return url


async def postgres_reachable(url: URL) -> str | None:
    """None, or why the server cannot be reached."""
    try:
        connection = await asyncpg.connect(admin_dsn(url), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def reset_postgres(url: URL) -> None:
    """Drop and create the benchmark's own database (never `test`)."""
    await _execute(
        admin_dsn(url),
        f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)',
        f'CREATE DATABASE "{url.database}"',
    )


async def create_postgres_if_missing(url: URL) -> None:
    """The database the benchmarks that read BENCH_DATABASE_URL expect to find."""
    connection = await asyncpg.connect(admin_dsn(url), timeout=5)
    try:
        found = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", url.database
        )
        if not found:
            await connection.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await connection.close()


async def drop_postgres(url: URL) -> None:
    await _execute(admin_dsn(url), f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


async def reset_postgres_schema(url: URL, schema: str = "public") -> None:
    await _execute(
        postgres_dsn(url), f"DROP SCHEMA IF EXISTS {schema} CASCADE", f"CREATE SCHEMA {schema}"
    )


async def pg_transactions(url: URL) -> int:
    """Transactions committed or rolled back in the benchmark's database so far."""
    connection = await asyncpg.connect(postgres_dsn(url), timeout=5)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await connection.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )
    finally:
        await connection.close()


def table_of(model: type[Base]) -> Table:
    """A model's table (SQLAlchemy types ``__table__`` as any FROM clause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def insert_rows(
    session: AsyncSession,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    batch: int | None = None,
) -> None:
    """Rows into a model's table in bulk (executemany, ``batch`` rows at a time): the ORM's
    unit of work would take longer than the benchmark itself."""
    step = batch or max(1, len(rows))
    for start in range(0, len(rows), step):
        await session.execute(insert(table_of(model)), rows[start : start + step])


async def analyze(database: Database) -> None:
    """PostgreSQL: statistics for the planner, as on a live database (SQLite: nothing)."""
    if not database.is_sqlite:
        async with database.transaction() as session:
            await session.execute(text("ANALYZE"))
