"""Moderators' settings: the channel, the weekly post, the audit trail, members per server

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill rows that already exist; new rows get the model's defaults.
    with op.batch_alter_table("guild_settings") as batch:
        batch.alter_column("share_channel_id", new_column_name="channel_id")
        batch.add_column(
            sa.Column("weekly_post_enabled", sa.Boolean(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("weekly_weekday", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("weekly_hour", sa.SmallInteger(), nullable=False, server_default="17")
        )
        batch.add_column(
            sa.Column("weekly_timezone", sa.String(length=64), nullable=False, server_default="UTC")
        )
        batch.add_column(
            sa.Column("weekly_posts_made", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("weekly_problem", sa.Text(), nullable=True))
    op.create_table(
        "config_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("moderator_id", sa.BigInteger(), nullable=True),
        sa.Column("setting", sa.String(length=20), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=False),
        sa.Column("new_value", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_changes")),
    )
    op.create_index("ix_config_changes_guild_created", "config_changes", ["guild_id", "created_at"])
    op.create_table(
        "guild_members",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_guild_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("guild_id", "user_id", name=op.f("pk_guild_members")),
    )
    op.create_table(
        "weekly_posts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=False),
        sa.Column("point", sa.String(length=20), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_posts")),
        sa.UniqueConstraint("guild_id", "scheduled_at", name="uq_weekly_posts_guild_slot"),
    )
    op.create_index("ix_weekly_posts_state_due", "weekly_posts", ["state", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_weekly_posts_state_due", table_name="weekly_posts")
    op.drop_table("weekly_posts")
    op.drop_table("guild_members")
    op.drop_index("ix_config_changes_guild_created", table_name="config_changes")
    op.drop_table("config_changes")
    with op.batch_alter_table("guild_settings") as batch:
        for column in (
            "weekly_problem",
            "weekly_posts_made",
            "weekly_timezone",
            "weekly_hour",
            "weekly_weekday",
            "weekly_post_enabled",
        ):
            batch.drop_column(column)
        batch.alter_column("channel_id", new_column_name="share_channel_id")
