"""Key ids: each sealed value records which key sealed it, so keys can rotate

- ``reflections.key_id``, ``decisions.key_id``: ``db.crypto.key_id`` of the key that sealed
  the body or reason. Rows written before are left NULL ("unrecorded"): every configured key
  is tried for them, and ``python bot.py rotate-key`` re-seals and records them.
- An index on ``(key_id, id)`` of each: which keys still seal something, and the newest row
  of an unrecorded key, in a few index probes at start-up.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("reflections", "decisions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("key_id", sa.String(16), nullable=True))
        op.create_index(f"ix_{table}_key_id", table, ["key_id", "id"])


def downgrade() -> None:
    for table in ("decisions", "reflections"):
        op.drop_index(f"ix_{table}_key_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_id")
