"""cover /progress's scan of a member's reflections with one index

/progress reads every reflection of a member (id, point, time, rating) but no text. With the
old (user_id, created_at) index each of those rows cost a lookup in a large table; carrying
the columns in the index answers the query from the index alone (bench/journal.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_reflections_user_created", table_name="reflections")
    op.create_index(
        "ix_reflections_user_created",
        "reflections",
        ["user_id", "created_at", "id", "point", "comfort"],
    )


def downgrade() -> None:
    op.drop_index("ix_reflections_user_created", table_name="reflections")
    op.create_index("ix_reflections_user_created", "reflections", ["user_id", "created_at"])
