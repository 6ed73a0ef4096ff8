"""DM check-ins: members' plans, the check-ins themselves, and kept DM channels

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("dm_channel_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "checkin_plans",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("cadence", sa.String(length=12), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("year_started_at", UTCDateTime(), nullable=False),
        sa.Column("paused_until", UTCDateTime(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("notice_pending", sa.Boolean(), nullable=False),
        sa.Column("last_delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_checkin_plans_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_checkin_plans")),
    )
    op.create_table(
        "checkins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("point", sa.String(length=20), nullable=True),
        sa.Column("prompt", sa.String(length=10), nullable=True),
        sa.Column("scheduled_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("response", sa.String(length=10), nullable=True),
        sa.Column("responded_at", UTCDateTime(), nullable=True),
        sa.Column("reflection_id", sa.Integer(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_checkins_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reflection_id"],
            ["reflections.id"],
            name=op.f("fk_checkins_reflection_id_reflections"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    op.create_index("ix_checkins_state_due", "checkins", ["state", "due_at"])
    op.create_index("ix_checkins_user_state", "checkins", ["user_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_checkins_user_state", table_name="checkins")
    op.drop_index("ix_checkins_state_due", table_name="checkins")
    op.drop_table("checkins")
    op.drop_table("checkin_plans")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("dm_channel_id")
