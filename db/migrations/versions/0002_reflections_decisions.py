"""reflections and decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reflections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("point", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("comfort", sa.SmallInteger(), nullable=True),
        sa.Column("submission_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("edited_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_reflections_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reflections")),
        sa.UniqueConstraint("user_id", "submission_key", name="uq_reflections_user_submission"),
    )
    op.create_index("ix_reflections_user_created", "reflections", ["user_id", "created_at"])
    op.create_index(
        "ix_reflections_user_point_created", "reflections", ["user_id", "point", "created_at"]
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("leaning", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_decisions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index("ix_decisions_user_created", "decisions", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_decisions_user_created", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index("ix_reflections_user_point_created", table_name="reflections")
    op.drop_index("ix_reflections_user_created", table_name="reflections")
    op.drop_table("reflections")
