"""Shared fixtures: a migrated database on SQLite and, when TEST_DATABASE_URL is set, PostgreSQL."""

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from advice.clock import ManualClock
from db import Database
from db.migrate import upgrade

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning


def database_backends() -> list[object]:
    postgres_skip = pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="TEST_DATABASE_URL is not set: the PostgreSQL half of this test was skipped",
    )
    return ["sqlite", pytest.param("postgresql", marks=postgres_skip)]


async def reset_postgres_schema(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'crossroads.db'}"
    assert TEST_DATABASE_URL
    return TEST_DATABASE_URL


@pytest.fixture(params=database_backends())
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A freshly migrated database of each backend."""
    url = database_url(request.param, tmp_path)
    if request.param == "postgresql":
        await reset_postgres_schema(url)
    db = Database(url)
    await upgrade(db)
    yield db
    await db.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)
