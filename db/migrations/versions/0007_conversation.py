"""Conversation: moderators may switch mention answers off; a check-in's reply window may close

- ``guild_settings.chat_enabled``: whether the bot answers messages that mention it in the
  server (``/config chat``); on by default, as for a server that never configured anything.
- ``checkins.replies_closed_at``: set when a member says a DM was not an answer to the
  check-in; later DMs are conversation, not more of the answer.
- At most one pending regular check-in per member and one pending snoozed copy per point, as
  unique partial indexes. Two Snooze presses at once could leave two copies (and two DMs the
  next day); any such duplicates are cancelled first, keeping the earliest.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("uq_checkins_pending_regular", ["user_id"], "state = 'pending' AND point IS NULL"),
    ("uq_checkins_pending_point", ["user_id", "point"], "state = 'pending' AND point IS NOT NULL"),
)


def upgrade() -> None:
    with op.batch_alter_table("guild_settings") as table:
        table.add_column(
            sa.Column("chat_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("checkins") as table:
        table.add_column(sa.Column("replies_closed_at", UTCDateTime(), nullable=True))
    # Duplicates left by the race this closes: keep the earliest of each, cancel the rest.
    op.execute(
        "UPDATE checkins SET state = 'cancelled', lease_until = NULL "
        "WHERE state = 'pending' AND id NOT IN ("
        " SELECT MIN(id) FROM checkins WHERE state = 'pending'"
        " GROUP BY user_id, COALESCE(point, ''))"
    )
    for name, columns, where in INDEXES:
        op.create_index(
            name,
            "checkins",
            columns,
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    for name, _, _ in INDEXES:
        op.drop_index(name, table_name="checkins")
    with op.batch_alter_table("checkins") as table:
        table.drop_column("replies_closed_at")
    with op.batch_alter_table("guild_settings") as table:
        table.drop_column("chat_enabled")
