"""Storage: SQLAlchemy 2 async engine, models, query functions and Alembic migrations.

Query functions take the session; the caller owns the transaction
(`async with database.transaction() as session:`). Nothing here imports discord.
"""

from db.database import Database, DatabaseConfigError, StorageUnavailable

__all__ = ["Database", "DatabaseConfigError", "StorageUnavailable"]
