"""SQLAlchemy 2.0 typed ORM models: the tables behind conversations, the model registry and runs.

The schema itself is created and changed only by the Alembic migrations in ``migrations/``;
these classes describe it for queries. Keep the two in step (``tests/store`` checks that a
migrated database matches this metadata).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Allowed values of the status-like columns; the migrations enforce the same sets with CHECKs.
CONVERSATION_STATUSES = ("open", "escalated", "closed", "archived")
MESSAGE_ROLES = ("system", "user", "assistant")
MESSAGE_STATUSES = ("ok", "stopped", "error", "blocked")
MODEL_STATUSES = ("active", "archived", "candidate")
RUN_STATUSES = ("running", "finished", "failed", "interrupted")
MODERATION_DIRECTIONS = ("input", "output")
MODERATION_ACTIONS = ("allow", "flag", "mask", "block", "escalate")

# Named constraints: SQLite batch migrations can only drop or alter what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and returns naive values, so
    they are stored as UTC and tagged as UTC again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: appkit stores timezone-aware UTC times only")
        value = value.astimezone(timezone.utc)
        # SQLite would keep the "+00:00" suffix in the text and break ordering against values
        # written without it; store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# Python None is SQL NULL (not the JSON value null), so "IS NULL" finds unset columns.
JSONColumn = JSON(none_as_null=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata and its naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONColumn}


class Conversation(Base):
    """One chat between a user and an app."""

    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint(_in("status", CONVERSATION_STATUSES), name="status"),
        # Indexes ``app`` too (leading column) and serves "newest first within an app".
        Index("ix_conversations_app_updated", "app", "updated_at"),
        # Reports: an app's conversations started in a period.
        Index("ix_conversations_app_created", "app", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    external_user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """One turn of a conversation, with how it was produced and what safety made of it."""

    __tablename__ = "messages"
    __table_args__ = (
        # Also the index on conversation_id (leading column) and the "in order" read path.
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        CheckConstraint(_in("role", MESSAGE_ROLES), name="role"),
        CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(255))
    template_name: Mapped[str | None] = mapped_column(String(255))
    template_version: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    moderation: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    sentiment: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    # How the reply was chosen: mode, the past case it came from, the candidates' scores.
    grounding: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    # A person who wrote an assistant message instead of the bot ("agent" or "agent:NAME").
    author: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """A thumbs up (+1) or down (-1) on one message."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("rating IN (1, -1)", name="rating"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelEntry(Base):
    """A trained model in the registry; at most one per app is ``active``."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint(_in("status", MODEL_STATUSES), name="status"),
        # The database itself guarantees one active model per app (partial unique index).
        Index(
            "uq_models_one_active_per_app",
            "app",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    app: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(Text)
    base: Mapped[str | None] = mapped_column(String(255))
    preset: Mapped[str | None] = mapped_column(String(64))
    # BigInteger: a "base" preset or a local checkpoint can pass 2**31 parameters.
    params: Mapped[int | None] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    status: Mapped[str] = mapped_column(String(16), default="candidate", server_default="candidate")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The app's active model when this one was promoted over it (what a rollback returns to).
    previous: Mapped[str | None] = mapped_column(String(255))
    promoted_at: Mapped[datetime | None] = mapped_column()


class TrainingRun(Base):
    """One training run: its config, the data it saw and how it ended."""

    __tablename__ = "training_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str | None] = mapped_column(String(255))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    data_fingerprint: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)


class ModerationEvent(Base):
    """What the safety policy decided about one input or output."""

    __tablename__ = "moderation_events"
    __table_args__ = (
        CheckConstraint(_in("direction", MODERATION_DIRECTIONS), name="direction"),
        CheckConstraint(_in("action", MODERATION_ACTIONS), name="action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    app: Mapped[str] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(64))
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    action: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentEntry(Base):
    """A draft produced by the writer app."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(500))
    brief: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    content: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(255))
    template_name: Mapped[str | None] = mapped_column(String(255))
    template_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A key of `appkit serve`: only its SHA-256 is stored, never the key itself."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("rate_per_minute > 0", name="rate_per_minute"),
        # One live key per name; a revoked key keeps its name in the history.
        Index(
            "uq_api_keys_one_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to recognise it in lists
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    apps: Mapped[list[str] | None] = mapped_column(JSONColumn)  # models and apps it may use; None: all
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class ApiKeyConversation(Base):
    """Which key created a conversation through the HTTP API (a key sees only its own)."""

    __tablename__ = "api_key_conversations"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
