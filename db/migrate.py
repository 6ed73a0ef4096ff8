"""Alembic, driven from code: applied at start-up and by `python bot.py migrate`."""

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from db.database import Database

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


class MigrationError(Exception):
    """A migration left the database inconsistent; the message is for the operator."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py uses this connection instead of opening its own (the async engine's, run in sync).
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    await run_migration(database, lambda conn: command.upgrade(alembic_config(conn), revision))


async def downgrade(database: Database, revision: str) -> None:
    await run_migration(database, lambda conn: command.downgrade(alembic_config(conn), revision))


async def run_migration(database: Database, migrate: Callable[[Connection], None]) -> None:
    """Run schema changes on one connection; on SQLite with foreign keys off meanwhile.

    SQLite alters most things by rebuilding the table (Alembic's batch mode: create a copy,
    DROP the original, rename). With foreign keys on, dropping `users` would cascade and
    delete every reflection. So they are off while migrating, and checked before turning
    them back on, as SQLite's documentation prescribes for table rebuilds.
    """
    async with database.engine.connect() as conn:
        if not database.is_sqlite:
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
    return MigrationContext.configure(conn).get_current_revision()


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    # Straight on the driver connection: PRAGMA foreign_keys is ignored inside a transaction,
    # and going through SQLAlchemy would begin one first.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(pragma)
    cursor.close()
