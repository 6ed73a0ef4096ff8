"""Alembic, driven from code: applied at start-up and by `python bot.py migrate`.

Start-up first reads the schema's revision with one query and imports Alembic (about 12 MiB
that a running bot never needs again) only when the schema is behind. A new, empty database
needs no history: it is given the newest schema straight from the models, which is what the
migrations make (tests/db/test_database.py compares the two, server defaults included), and
stamped with the newest revision, as Alembic's own documentation suggests for new databases.
On PostgreSQL, where several processes may start together, either happens under an advisory
lock: the second process waits for the first, then finds the schema current and changes
nothing.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from db.database import Database
from db.models import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# The newest revision in migrations/versions; tests/db/test_database.py checks it is Alembic's
# head, so a migration added without updating it fails CI instead of being skipped at start-up.
HEAD_REVISION = "0009"

# pg_advisory_xact_lock's key: any constant no other application on the database uses.
# (int.from_bytes(b"crossroa") would do; this is it, reduced to a signed 64-bit value.)
MIGRATION_LOCK_KEY = 0x63726F7373726F61


class MigrationError(Exception):
    """A migration left the database inconsistent; the message is for the operator."""


def alembic_config(connection: Connection | None = None) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py uses this connection instead of opening its own (the async engine's, run in sync).
    config.attributes["connection"] = connection
    return config


async def current_revision(database: Database) -> str | None:
    """The schema's revision, read without Alembic; None for an empty database."""
    async with database.engine.connect() as conn:
        try:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except DBAPIError:
            return None  # no alembic_version table yet (the failed statement is rolled back)


async def upgrade(
    database: Database, revision: str = "head", *, run_migrations: bool = False
) -> None:
    """To `revision`; `run_migrations` makes even a new database through every migration."""
    if revision == "head":
        current = await current_revision(database)
        if current == HEAD_REVISION:
            return
        if current is None and not run_migrations and await create_if_empty(database):
            return

    def migrate(conn: Connection) -> None:
        from alembic import command

        command.upgrade(alembic_config(conn), revision)

    await run_migration(database, migrate)


# Alembic's own table, as Alembic makes it.
VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


async def create_if_empty(database: Database) -> bool:
    """The newest schema from the models, stamped HEAD_REVISION, on a database with no table
    at all; False (nothing done) for any other."""
    async with database.engine.connect() as conn:
        if not database.is_sqlite:  # (SQLite: this connection's BEGIN IMMEDIATE holds it)
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        if tables:  # another process made it meanwhile, or a schema Alembic must look at
            await conn.rollback()
            return "alembic_version" in tables and await _is_current(conn)
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(text(VERSION_TABLE))
        await conn.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:revision)"),
            {"revision": HEAD_REVISION},
        )
        await conn.commit()
    return True


async def _is_current(conn: "AsyncConnection") -> bool:
    version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    await conn.rollback()
    return bool(version == HEAD_REVISION)


async def downgrade(database: Database, revision: str) -> None:
    def migrate(conn: Connection) -> None:
        from alembic import command

        command.downgrade(alembic_config(conn), revision)

    await run_migration(database, migrate)


async def run_migration(database: Database, migrate: Callable[[Connection], None]) -> None:
    """Run schema changes on one connection; on SQLite with foreign keys off meanwhile.

    SQLite alters most things by rebuilding the table (Alembic's batch mode: create a copy,
    DROP the original, rename). With foreign keys on, dropping `users` would cascade and
    delete every reflection. So they are off while migrating, and checked before turning
    them back on, as SQLite's documentation prescribes for table rebuilds.
    """
    async with database.engine.connect() as conn:
        if not database.is_sqlite:
            # Held until this transaction ends, so a crash mid-migration releases it too.
            # Alembic reads the revision after the lock is granted, so a process that waited
            # sees the other's work and has nothing to do.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await conn.run_sync(migrate)
            await conn.commit()
            return
        await conn.run_sync(_sqlite_pragma, "PRAGMA foreign_keys=OFF")
        try:
            before = await conn.run_sync(_revision)
            await conn.run_sync(migrate)
            await conn.commit()
            # Only a migration that ran can have broken references (and the check scans
            # every table, so it does not run on every start).
            if await conn.run_sync(_revision) != before:
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise MigrationError(
                        f"the migration left {len(broken)} rows pointing at missing rows"
                    )
        finally:
            # PRAGMA foreign_keys is ignored inside a transaction, and a failed migration
            # leaves one open: end it, or the pooled connection would keep them off.
            if conn.in_transaction():
                await conn.rollback()
            await conn.run_sync(_sqlite_pragma, "PRAGMA foreign_keys=ON")


def _revision(conn: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    # Straight on the driver connection: PRAGMA foreign_keys is ignored inside a transaction,
    # and going through SQLAlchemy would begin one first.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(pragma)
    cursor.close()
