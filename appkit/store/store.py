"""The Store: conversations, messages, feedback and moderation events, over one engine.

Every method opens its own short session and returns frozen records (appkit.store.records),
never ORM objects, so callers in other threads (the TUI worker, a web handler) can keep them.
The model registry, training runs and documents live in appkit.store.registry; export in
appkit.store.export; what reports read in appkit.store.analytics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from appkit.errors import AppkitError, NotFoundError, StorageError
from appkit.store import analytics, keys, registry
from appkit.store.db import create_engine, driver_reason, ensure_schema, mask_url, writer_engine
from appkit.store.models import (
    CONVERSATION_STATUSES,
    MESSAGE_ROLES,
    MESSAGE_STATUSES,
    MODERATION_ACTIONS,
    MODERATION_DIRECTIONS,
    ApiKeyConversation,
    Conversation,
    Feedback,
    Message,
    ModerationEvent,
    utcnow,
)
from appkit.store.records import (
    ConversationRecord,
    FeedbackRecord,
    MessageRecord,
    ModerationEventRecord,
    to_record,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from appkit.config import Settings

# Who may write an assistant message besides the bot: a human agent, optionally named.
AUTHOR = re.compile(r"agent(?::[^\s:]{1,64})?")
# Messages can only be added while a conversation is still live.
CLOSED_STATUSES = ("closed", "archived")
# Fields of a message that append_message / update_message accept besides role and content.
MESSAGE_FIELDS = (
    "model_name",
    "template_name",
    "template_version",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "moderation",
    "sentiment",
    "grounding",
    "status",
    "error",
    "author",
)


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a StorageError naming both."""
    if value not in allowed:
        raise StorageError(f"{what} {value!r} is not one of {', '.join(allowed)}.")
    return value


class Store(registry.RegistryMixin, keys.KeysMixin, analytics.AnalyticsMixin):
    """appkit's database: open one with :func:`appkit.store.open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = mask_url(engine.url)
        self._read_sessions = sessionmaker(engine, expire_on_commit=False)
        # On SQLite writers BEGIN IMMEDIATE: they queue for the write lock instead of failing.
        self._write_sessions = sessionmaker(writer_engine(engine), expire_on_commit=False)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # --- sessions ---------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        # Driver errors (server gone, disk full, lock timeout) reach the user as one line that
        # names the database, never as a traceback.
        try:
            yield
        except AppkitError:
            raise
        except DBAPIError as e:
            raise StorageError(f"database {self.url}: {driver_reason(e)}") from e
        except PoolTimeoutError as e:
            raise StorageError(f"database {self.url}: no free connection ({e}).") from e

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._guard(), self._read_sessions() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on any error."""
        with self._guard(), self._write_sessions.begin() as session:
            yield session

    # --- conversations ----------------------------------------------------------------------

    def create_conversation(self, app: str, title: str | None = None, user: str | None = None) -> ConversationRecord:
        """Start a conversation for ``app`` (``user``: the caller's own id for the end user)."""
        with self._write() as s:
            conv = Conversation(app=app, title=title, external_user_id=user, status="open")
            s.add(conv)
            s.flush()
            return to_record(ConversationRecord, conv, message_count=0)

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        """One conversation with its message count; NotFoundError if there is none."""
        with self._read() as s:
            row = s.execute(self._conversation_query().where(Conversation.id == conversation_id)).first()
            if row is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist.")
            return to_record(ConversationRecord, row[0], message_count=row[1])

    def list_conversations(
        self,
        app: str | None = None,
        status: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ConversationRecord]:
        """Conversations, most recently updated first; ``search`` matches titles and message text."""
        query = self._conversation_query()
        if app is not None:
            query = query.where(Conversation.app == app)
        if status is not None:
            query = query.where(Conversation.status == check_choice("status", status, CONVERSATION_STATUSES))
        if search:
            in_messages = exists().where(
                Message.conversation_id == Conversation.id, Message.content.icontains(search, autoescape=True)
            )
            query = query.where(or_(Conversation.title.icontains(search, autoescape=True), in_messages))
        query = query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit).offset(offset)
        with self._read() as s:
            return [to_record(ConversationRecord, conv, message_count=n) for conv, n in s.execute(query)]

    @staticmethod
    def _conversation_query() -> Any:
        count = (
            select(func.count(Message.id)).where(Message.conversation_id == Conversation.id).scalar_subquery()
        )
        return select(Conversation, count)

    def set_status(self, conversation_id: int, status: str) -> ConversationRecord:
        """Set a conversation's status (open, escalated, closed, archived)."""
        check_choice("status", status, CONVERSATION_STATUSES)
        return self._update_conversation(conversation_id, status=status)

    def rename(self, conversation_id: int, title: str | None) -> ConversationRecord:
        """Change a conversation's title."""
        return self._update_conversation(conversation_id, title=title)

    def _update_conversation(self, conversation_id: int, **values: Any) -> ConversationRecord:
        with self._write() as s:
            conv = self._lock_conversation(s, conversation_id)
            for key, value in values.items():
                setattr(conv, key, value)
            conv.updated_at = utcnow()
        return self.get_conversation(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation with its messages and their feedback (moderation events stay)."""
        with self._write() as s:
            self._lock_conversation(s, conversation_id)
            message_ids = select(Message.id).where(Message.conversation_id == conversation_id)
            # Explicit rather than ON DELETE alone: correct even on a SQLite opened elsewhere
            # without PRAGMA foreign_keys.
            s.execute(delete(Feedback).where(Feedback.message_id.in_(message_ids)))
            s.execute(
                update(ModerationEvent)
                .where(
                    or_(
                        ModerationEvent.conversation_id == conversation_id,
                        ModerationEvent.message_id.in_(message_ids),
                    )
                )
                .values(conversation_id=None, message_id=None)
            )
            s.execute(delete(Message).where(Message.conversation_id == conversation_id))
            s.execute(delete(ApiKeyConversation).where(ApiKeyConversation.conversation_id == conversation_id))
            s.execute(delete(Conversation).where(Conversation.id == conversation_id))

    @staticmethod
    def _lock_conversation(s: Session, conversation_id: int) -> Conversation:
        # FOR UPDATE on PostgreSQL, so a change of status and an append never interleave.
        # SQLite ignores it; BEGIN IMMEDIATE already serialized the writers.
        conv = s.execute(
            select(Conversation).where(Conversation.id == conversation_id).with_for_update()
        ).scalar_one_or_none()
        if conv is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist.")
        return conv

    # --- messages ---------------------------------------------------------------------------

    def append_message(self, conversation_id: int, role: str, content: str, **fields: Any) -> MessageRecord:
        """Add a message at the end of a conversation.

        Args:
            fields: any of model_name, template_name, template_version, latency_ms,
                prompt_tokens, completion_tokens, moderation, sentiment, grounding, status, error,
                author (a person who wrote an assistant message instead of the bot).

        Raises:
            NotFoundError: no such conversation.
            StorageError: the conversation is closed or archived, or a value is invalid.
        """
        check_choice("role", role, MESSAGE_ROLES)
        values = self._message_fields(fields)
        with self._write() as s:
            now = utcnow()
            # One statement that locks the conversation row (appends to it queue here, which
            # makes max(seq) + 1 race-free on PostgreSQL; on SQLite BEGIN IMMEDIATE already
            # serialized writers), bumps updated_at and reads the status. A closed conversation
            # raises below and the transaction rolls back.
            status = s.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(updated_at=now)
                .returning(Conversation.status)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if status is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist.")
            if status in CLOSED_STATUSES:
                raise StorageError(
                    f"conversation {conversation_id} is {status}: no messages can be added "
                    "(set its status back to open first)."
                )
            # A new statement after the lock: in READ COMMITTED it sees every earlier append.
            last = s.scalar(select(func.max(Message.seq)).where(Message.conversation_id == conversation_id))
            msg = Message(
                conversation_id=conversation_id,
                seq=(last or 0) + 1,
                role=role,
                content=content,
                created_at=now,
                **values,
            )
            s.add(msg)
            s.flush()
            return to_record(MessageRecord, msg)

    def agent_reply(self, conversation_id: int, text: str, *, author: str = "agent") -> MessageRecord:
        """A person's answer in a conversation (a human agent after a handoff), stored with its author.

        Retraining learns from these (``appkit support retrain``); the conversation keeps its status.

        Raises:
            StorageError: empty text, an author other than ``agent`` or ``agent:NAME``, or a closed conversation.
            NotFoundError: no such conversation.
        """
        if not text or not text.strip():
            raise StorageError("the agent's reply is empty; write what the customer should read.")
        if not AUTHOR.fullmatch(author):
            raise StorageError(f"author {author!r}: expected 'agent' or 'agent:NAME' (a name without spaces or ':').")
        return self.append_message(conversation_id, "assistant", text.strip(), author=author)

    def update_message(self, message_id: int, **fields: Any) -> MessageRecord:
        """Change fields of a stored message (e.g. content and status after a stopped stream)."""
        content = fields.pop("content", None)
        values = self._message_fields(fields, defaults=False)
        if content is not None:
            values["content"] = content
        with self._write() as s:
            msg = s.get(Message, message_id)
            if msg is None:
                raise NotFoundError(f"message {message_id} does not exist.")
            for key, value in values.items():
                setattr(msg, key, value)
            s.flush()
            return to_record(MessageRecord, msg)

    @staticmethod
    def _message_fields(fields: dict[str, Any], *, defaults: bool = True) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(MESSAGE_FIELDS))
        if unknown:
            raise StorageError(f"unknown message field(s) {', '.join(unknown)}; known: {', '.join(MESSAGE_FIELDS)}.")
        values = dict(fields)
        if defaults:
            values.setdefault("status", "ok")
        if "status" in values:
            check_choice("message status", values["status"], MESSAGE_STATUSES)
        return values

    def get_message(self, message_id: int) -> MessageRecord:
        """One message by id."""
        with self._read() as s:
            msg = s.get(Message, message_id)
            if msg is None:
                raise NotFoundError(f"message {message_id} does not exist.")
            return to_record(MessageRecord, msg)

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        """The messages of a conversation in order (seq 1, 2, ...)."""
        with self._read() as s:
            if s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist.")
            rows = s.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq))
            return [to_record(MessageRecord, m) for m in rows]

    # --- feedback ---------------------------------------------------------------------------

    def add_feedback(self, message_id: int, rating: int, comment: str | None = None) -> FeedbackRecord:
        """Rate a message +1 (good) or -1 (bad), with an optional comment."""
        if rating not in (1, -1):
            raise StorageError(f"rating must be +1 or -1, not {rating!r}.")
        with self._write() as s:
            if s.get(Message, message_id) is None:
                raise NotFoundError(f"message {message_id} does not exist.")
            fb = Feedback(message_id=message_id, rating=rating, comment=comment)
            s.add(fb)
            s.flush()
            return to_record(FeedbackRecord, fb)

    def feedback_for(self, conversation_id: int) -> list[FeedbackRecord]:
        """All feedback on the messages of a conversation, oldest first."""
        with self._read() as s:
            if s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist.")
            rows = s.scalars(
                select(Feedback)
                .join(Message, Feedback.message_id == Message.id)
                .where(Message.conversation_id == conversation_id)
                .order_by(Feedback.id)
            )
            return [to_record(FeedbackRecord, f) for f in rows]

    # --- moderation -------------------------------------------------------------------------

    def record_moderation(
        self,
        app: str,
        direction: str,
        backend: str,
        action: str,
        scores: dict[str, Any] | None = None,
        *,
        message_id: int | None = None,
        conversation_id: int | None = None,
    ) -> ModerationEventRecord:
        """Record what the safety policy did with an input or output."""
        check_choice("direction", direction, MODERATION_DIRECTIONS)
        check_choice("action", action, MODERATION_ACTIONS)
        with self._write() as s:
            if message_id is not None and s.get(Message, message_id) is None:
                raise NotFoundError(f"message {message_id} does not exist.")
            if conversation_id is not None and s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist.")
            event = ModerationEvent(
                app=app,
                direction=direction,
                backend=backend,
                action=action,
                scores=scores,
                message_id=message_id,
                conversation_id=conversation_id,
            )
            s.add(event)
            s.flush()
            return to_record(ModerationEventRecord, event)

    def moderation_events(
        self,
        app: str | None = None,
        *,
        conversation_id: int | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[ModerationEventRecord]:
        """Moderation events, newest first."""
        query = select(ModerationEvent)
        if app is not None:
            query = query.where(ModerationEvent.app == app)
        if conversation_id is not None:
            query = query.where(ModerationEvent.conversation_id == conversation_id)
        if action is not None:
            query = query.where(ModerationEvent.action == check_choice("action", action, MODERATION_ACTIONS))
        with self._read() as s:
            rows = s.scalars(query.order_by(ModerationEvent.id.desc()).limit(limit))
            return [to_record(ModerationEventRecord, e) for e in rows]

    # --- export -----------------------------------------------------------------------------

    def export_jsonl(self, target: str | Iterable[int], path: str | Path) -> int:
        """Write conversations (an app's, or these ids) as chat fine-tuning JSONL; returns the count.

        Each line is ``{"id", "messages": [{"role", "content"}...], "app", "status"}``;
        messages with status "error" are left out, and so are conversations left empty.
        """
        from appkit.store.export import export_jsonl

        with self._read() as s:
            return export_jsonl(s, target, Path(path))


def open_store(settings: Settings | None = None, *, url: str | None = None, upgrade: bool | None = None) -> Store:
    """Open appkit's database, bringing its schema to head or refusing to use it.

    Args:
        settings: where the database is (``settings.database_url``); loaded if omitted.
        url: a database URL that overrides ``settings``.
        upgrade: migrate to head if behind; None means yes for SQLite, no for a server.

    Raises:
        StorageError: unreachable, at a newer revision than this appkit, or behind (and not
            upgraded: run ``appkit db upgrade``).
    """
    if url is None:
        if settings is None:
            from appkit.config import load_settings

            settings = load_settings()
        url = settings.database_url
    engine = create_engine(url)
    try:
        ensure_schema(engine, upgrade=upgrade)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)
