"""64-bit ids everywhere: reflections, decisions and the audit trail had PostgreSQL integers

Members' clients send these ids back (autocomplete values, button custom_ids); with 32-bit
columns a number past 2,147,483,647 was a database error rather than "not found", and the
tables could not outgrow it. SQLite's INTEGER PRIMARY KEY is already 64-bit: nothing to do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The serial primary keys, and the one column that refers to one of them.
ID_TABLES = ("reflections", "decisions", "config_changes")


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger(), "bigint")


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer(), "integer")


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int], sequence: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("checkins", "reflection_id", type_=new, existing_type=old)
    for table in ID_TABLES:
        op.alter_column(table, "id", type_=new, existing_type=old)
        # SERIAL made the sequence `AS integer`: it would stop at 2**31 - 1 on its own.
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS {sequence}")
