"""Pending notices: the members to tell about a delivery problem, in an index of their own

- ``ix_checkin_plans_notice_pending``: ``checkin_plans.user_id`` where ``notice_pending``.
  Each process keeps these members in memory (so no command reads the database to find out)
  and reads them again every few seconds, for the problems other processes recorded: a
  partial index makes that read as small as the list, whatever the number of plans.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "notice_pending = true"


def upgrade() -> None:
    op.create_index(
        "ix_checkin_plans_notice_pending",
        "checkin_plans",
        ["user_id"],
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_checkin_plans_notice_pending", table_name="checkin_plans")
