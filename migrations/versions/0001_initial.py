"""Initial schema: conversations, messages, feedback, models, training runs, moderation, documents.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the allowed values as of this revision: a migration must not change when
# appkit.store.models does.
CONVERSATION_STATUSES = "status IN ('open', 'escalated', 'closed', 'archived')"
MESSAGE_ROLES = "role IN ('system', 'user', 'assistant')"
MESSAGE_STATUSES = "status IN ('ok', 'stopped', 'error')"
MODEL_STATUSES = "status IN ('active', 'archived', 'candidate')"
RUN_STATUSES = "status IN ('running', 'finished', 'failed', 'interrupted')"
DIRECTIONS = "direction IN ('input', 'output')"
ACTIONS = "action IN ('allow', 'flag', 'mask', 'block', 'escalate')"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("title", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("external_user_id", sa.String(255), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(CONVERSATION_STATUSES, name=op.f("ck_conversations_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index("ix_conversations_app_updated", "conversations", ["app", "updated_at"])
    op.create_index(op.f("ix_conversations_external_user_id"), "conversations", ["external_user_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("template_name", sa.String(255), nullable=True),
        sa.Column("template_version", sa.String(64), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("moderation", sa.JSON(), nullable=True),
        sa.Column("sentiment", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), server_default="ok", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint(MESSAGE_ROLES, name=op.f("ck_messages_role")),
        sa.CheckConstraint(MESSAGE_STATUSES, name=op.f("ck_messages_status")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("rating IN (1, -1)", name=op.f("ck_feedback_rating")),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_feedback_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_message_id"), "feedback", ["message_id"])

    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("base", sa.String(255), nullable=True),
        sa.Column("preset", sa.String(64), nullable=True),
        sa.Column("params", sa.BigInteger(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), server_default="candidate", nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(MODEL_STATUSES, name=op.f("ck_models_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_index(op.f("ix_models_app"), "models", ["app"])
    # One active model per app, enforced by the database (partial unique index).
    op.create_index(
        "uq_models_one_active_per_app",
        "models",
        ["app"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )

    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("data_fingerprint", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        _ts("started_at"),
        _ts("ended_at", nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.CheckConstraint(RUN_STATUSES, name=op.f("ck_training_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    op.create_index(op.f("ix_training_runs_app"), "training_runs", ["app"])

    op.create_table(
        "moderation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(DIRECTIONS, name=op.f("ck_moderation_events_direction")),
        sa.CheckConstraint(ACTIONS, name=op.f("ck_moderation_events_action")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_moderation_events_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_moderation_events_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_events")),
    )
    op.create_index(op.f("ix_moderation_events_app"), "moderation_events", ["app"])
    op.create_index(op.f("ix_moderation_events_conversation_id"), "moderation_events", ["conversation_id"])
    op.create_index(op.f("ix_moderation_events_message_id"), "moderation_events", ["message_id"])

    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("brief", sa.JSON(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("template_name", sa.String(255), nullable=True),
        sa.Column("template_version", sa.String(64), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index(op.f("ix_documents_app"), "documents", ["app"])


def downgrade() -> None:
    # Children first: foreign keys point from these to the tables dropped after them.
    op.drop_table("documents")
    op.drop_table("moderation_events")
    op.drop_table("training_runs")
    op.drop_index("uq_models_one_active_per_app", table_name="models")
    op.drop_table("models")
    op.drop_table("feedback")
    op.drop_table("messages")
    op.drop_table("conversations")
