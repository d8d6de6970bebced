"""What reports read from the store: an app's activity in a period, as plain rows (methods of Store).

One query per table, each returning only the columns a report needs, so a period of 100,000
messages is read in about a second on SQLite or PostgreSQL. Everything is keyed by the
conversations *started* in the period: a conversation counts once, with all its messages,
ratings, handoffs and safety events, even if it went on past the period's end.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, case, func, select

from appkit.store.models import Conversation, Feedback, Message, ModerationEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Moderation events of a handoff carry this backend prefix and the reason after it.
HANDOFF_PREFIX = "handoff:"


class ConversationRow(NamedTuple):
    id: int
    created_at: datetime
    status: str


class MessageRow(NamedTuple):
    id: int
    conversation_id: int
    seq: int
    role: str
    created_at: datetime
    model_name: str | None
    template_name: str | None
    author: str | None
    latency_ms: int | None
    status: str
    sentiment: float | None  # the customer's mood in [-1, 1], when a sentiment model scored it
    content: str  # customer messages only ("" for the others unless asked for: reports never show replies)


class HandoffRow(NamedTuple):
    conversation_id: int
    message_id: int | None
    reason: str
    created_at: datetime


class SafetyRow(NamedTuple):
    conversation_id: int
    message_id: int | None
    direction: str
    action: str
    label: str  # the label that scored highest ("-" when the event has no scores)
    created_at: datetime


@dataclass
class Activity:
    """An app's conversations started in [start, end) and everything recorded about them."""

    app: str
    start: datetime
    end: datetime
    conversations: list[ConversationRow] = field(default_factory=list)
    messages: list[MessageRow] = field(default_factory=list)  # by conversation, then seq
    ratings: dict[int, int] = field(default_factory=dict)  # message id -> latest rating (+1 / -1)
    handoffs: list[HandoffRow] = field(default_factory=list)
    safety: list[SafetyRow] = field(default_factory=list)  # every decision other than "allow"


class AnalyticsMixin:
    """Report reads; needs the ``_read`` session of Store."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...

    def conversation_span(self, app: str) -> tuple[int, datetime | None, datetime | None]:
        """How many conversations ``app`` has, and when the first and the latest started."""
        with self._read() as s:
            n, first, last = s.execute(
                select(func.count(Conversation.id), func.min(Conversation.created_at), func.max(Conversation.created_at))
                .where(Conversation.app == app)).one()
        return int(n), _utc(first), _utc(last)

    def activity(self, app: str, start: datetime, end: datetime, *, replies: bool = False) -> Activity:
        """Everything about ``app``'s conversations started at or after ``start`` and before ``end``.

        ``replies``: read the assistant messages' text too (retraining learns from them; reports
        show customers' words only).
        """
        in_period = and_(Conversation.app == app, Conversation.created_at >= start, Conversation.created_at < end)
        out = Activity(app, start, end)
        with self._read() as s:
            out.conversations = [ConversationRow(*r) for r in s.execute(
                select(Conversation.id, Conversation.created_at, Conversation.status)
                .where(in_period).order_by(Conversation.id))]
            if not out.conversations:
                return out
            sentiment = Message.sentiment["score"].as_float()
            text = Message.content if replies else case((Message.role == "user", Message.content), else_="")
            out.messages = [MessageRow(*r) for r in s.execute(
                select(Message.id, Message.conversation_id, Message.seq, Message.role, Message.created_at,
                       Message.model_name, Message.template_name, Message.author, Message.latency_ms,
                       Message.status, sentiment, text)
                .join(Conversation, Message.conversation_id == Conversation.id)
                .where(in_period).order_by(Message.conversation_id, Message.seq))]
            for message_id, rating in s.execute(
                    select(Feedback.message_id, Feedback.rating)
                    .join(Message, Feedback.message_id == Message.id)
                    .join(Conversation, Message.conversation_id == Conversation.id)
                    .where(in_period).order_by(Feedback.id)):
                out.ratings[message_id] = rating  # the latest rating of a message wins
            for row in s.execute(
                    select(ModerationEvent.conversation_id, ModerationEvent.message_id, ModerationEvent.direction,
                           ModerationEvent.backend, ModerationEvent.action, ModerationEvent.scores,
                           ModerationEvent.created_at)
                    .join(Conversation, ModerationEvent.conversation_id == Conversation.id)
                    .where(in_period, ModerationEvent.action != "allow").order_by(ModerationEvent.id)):
                conversation_id, message_id, direction, backend, action, scores, created_at = row
                if backend.startswith(HANDOFF_PREFIX):
                    out.handoffs.append(HandoffRow(conversation_id, message_id, backend[len(HANDOFF_PREFIX):],
                                                   created_at))
                else:
                    out.safety.append(SafetyRow(conversation_id, message_id, direction, action,
                                                _top_label(scores), created_at))
        return out


def _utc(value: Any) -> datetime | None:
    """min()/max() come back untyped from SQLite (text or naive): make them aware UTC datetimes."""
    from datetime import timezone

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _top_label(scores: dict[str, Any] | None) -> str:
    numeric = {k: float(v) for k, v in (scores or {}).items() if isinstance(v, (int, float))}
    return max(numeric, key=numeric.__getitem__) if numeric else "-"
