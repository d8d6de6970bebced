"""Insights and the retrain loop: who wrote a reply, which model a promotion replaced, report index.

- ``messages.author``: set when a person, not the bot, wrote an assistant message (``agent`` or
  ``agent:NAME``: a human agent answering after a handoff). Retraining learns from these.
- ``models.previous`` / ``models.promoted_at``: the model that was active before this one was
  promoted, and when, so ``appkit models rollback`` can undo a promotion.
- ``ix_conversations_app_created``: reports read an app's conversations started in a period.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("author", sa.String(255), nullable=True))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("previous", sa.String(255), nullable=True))
        batch.add_column(sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_conversations_app_created", "conversations", ["app", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_app_created", table_name="conversations")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("promoted_at")
        batch.drop_column("previous")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("author")
