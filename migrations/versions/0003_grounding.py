"""Messages record how a reply was grounded; a reply the safety policy blocked has its own status.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the allowed values before and after this revision.
STATUSES_BEFORE = "status IN ('ok', 'stopped', 'error')"
STATUSES_AFTER = "status IN ('ok', 'stopped', 'error', 'blocked')"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("grounding", sa.JSON(), nullable=True))
        batch.drop_constraint(op.f("ck_messages_status"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_status"), STATUSES_AFTER)


def downgrade() -> None:
    op.execute("UPDATE messages SET status = 'ok' WHERE status = 'blocked'")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(op.f("ck_messages_status"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_status"), STATUSES_BEFORE)
        batch.drop_column("grounding")
