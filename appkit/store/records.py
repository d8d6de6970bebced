"""Plain frozen records the store hands out: safe to keep after the session that read them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")

JSONDict = dict[str, Any]
AGENT_SCOPE = "agent"  # an API key's scope that lets it post human agents' answers


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation; ``message_count`` is filled in by reads that count messages."""

    id: int
    app: str
    title: str | None
    status: str
    external_user_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int = 0


@dataclass(frozen=True)
class MessageRecord:
    """One message, in conversation order by ``seq`` (1, 2, ...)."""

    id: int
    conversation_id: int
    seq: int
    role: str
    content: str
    status: str
    created_at: datetime
    model_name: str | None = None
    template_name: str | None = None
    template_version: str | None = None
    latency_ms: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    moderation: JSONDict | None = None
    sentiment: JSONDict | None = None
    grounding: JSONDict | None = None
    error: str | None = None
    author: str | None = None  # a person who wrote it instead of the bot ("agent", "agent:NAME")

    @property
    def by_agent(self) -> bool:
        """Written by a human agent (not the bot, not a template)."""
        return self.role == "assistant" and self.author is not None


@dataclass(frozen=True)
class FeedbackRecord:
    """A rating (+1 / -1) of one message."""

    id: int
    message_id: int
    rating: int
    comment: str | None
    created_at: datetime


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: where it is, what it was trained on, how it scored."""

    id: int
    name: str
    app: str
    path: str
    status: str
    created_at: datetime
    base: str | None = None
    preset: str | None = None
    params: int | None = None
    metrics: JSONDict | None = None
    data: JSONDict | None = None
    previous: str | None = None  # the model active before this one was promoted
    promoted_at: datetime | None = None


@dataclass(frozen=True)
class TrainingRunRecord:
    """One training run."""

    id: int
    app: str
    model_name: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    config: JSONDict | None = None
    data_fingerprint: str | None = None
    metrics: JSONDict | None = None


@dataclass(frozen=True)
class ModerationEventRecord:
    """What the safety policy did with one input or output."""

    id: int
    app: str
    direction: str
    backend: str
    action: str
    created_at: datetime
    scores: JSONDict | None = None
    message_id: int | None = None
    conversation_id: int | None = None


@dataclass(frozen=True)
class DocumentRecord:
    """A writer draft."""

    id: int
    app: str
    title: str
    content: str
    created_at: datetime
    brief: JSONDict | None = None
    model_name: str | None = None
    template_name: str | None = None
    template_version: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key of `appkit serve`, without the key (only its hash is stored)."""

    id: int
    name: str
    prefix: str
    rate_per_minute: int
    created_at: datetime
    apps: list[str] | None = None  # the models and apps it may use; None: every one
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, model: str) -> bool:
        """Whether this key may use ``model`` (an app or model name)."""
        return self.apps is None or model in self.apps

    @property
    def answers_as_agent(self) -> bool:
        """Whether this key may post human agents' answers (only when named: a key for every app may not)."""
        return AGENT_SCOPE in (self.apps or ())


def to_record(cls: type[T], row: Any, **extra: Any) -> T:
    """Copy the matching attributes of an ORM row into record ``cls`` (plus ``extra``)."""
    names = [f.name for f in fields(cls) if f.name not in extra]  # type: ignore[arg-type]
    values = {name: getattr(row, name) for name in names if hasattr(row, name)}
    return cls(**values, **extra)
