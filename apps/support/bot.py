"""The support bot: stored conversations, grounded replies, handoff to humans, feedback.

    bot = appkit.load_app("support")
    conv = bot.start(user="u1")
    for piece in bot.stream(conv.id, "where is my order?"):
        print(piece, end="")
    bot.rate(bot.last_reply(conv.id).id, +1)

``reply(message, history)`` is the stateless form (nothing stored), used by evaluations and
audits. Everything the stored form does lands in the database: the customer's message, the
reply with its model, template version, latency and token counts, the safety decisions, and
the handoff when the bot gives the conversation to a human.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appkit.config import Settings, load_settings
from appkit.errors import AppkitError, GenerationError
from apps.support.handoff import asks_for_human

if TYPE_CHECKING:
    from appkit.engine import Engine, GenerationParams, ReplyStats
    from appkit.prompts import Prompts, Rendered
    from appkit.store import ConversationRecord, FeedbackRecord, MessageRecord, Store
    from apps.support.cases import CaseIndex
    from apps.support.mood import CustomerMood

Message = dict[str, str]
APP = "support"
HANDOFF_TEMPLATE = "support/handoff.j2"
WAITING_TEMPLATE = "support/waiting.j2"
# Mean log-probability per reply token under which the bot hands over. Replies to questions
# like the training data score about -0.3 on the demo model; off-topic guesses below -2.
DEFAULT_MIN_CONFIDENCE = -2.0
REPLY_ROOM = 128  # tokens kept free for the reply when trimming a long conversation


@dataclass
class BotReply:
    """A reply, with what the bot decided about it."""

    text: str
    escalated: bool = False
    reason: str = ""  # why it escalated: asked_for_human | low_confidence | safety | sentiment_drop
    confidence: float | None = None
    template: str = ""
    template_version: str = ""
    stats: ReplyStats | None = None
    moderation: dict[str, Any] = field(default_factory=dict)


class SupportBot:
    """A loaded support model, its prompts, its case index and its conversation store."""

    def __init__(self, engine: Engine, *, model_name: str, settings: Settings, prompts: Prompts,
                 index: CaseIndex | None, company: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 policy: Any = None, mood: CustomerMood | None = None) -> None:
        self.engine = engine
        self.model_name = model_name
        self.settings = settings
        self.prompts = prompts
        self.index = index
        self.company = company
        self.min_confidence = min_confidence
        self.policy = policy
        self.mood = mood
        self._store: Store | None = None

    @classmethod
    def open(cls, *, model: str | None = None, settings: Settings | None = None, prompts_dir: str | None = None,
             **options: Any) -> SupportBot:
        """Load the active support model (or ``model``: a registered name or a directory)."""
        from appkit.engine import Engine
        from appkit.models import resolve_model_path
        from appkit.prompts import prompts_for
        from apps.support.app import TRAIN_HINT
        from apps.support.cases import CaseIndex
        from apps.support.mood import open_mood
        from apps.support.prompting import DEFAULT_COMPANY

        settings = settings or load_settings()
        name, path = resolve_model_path(APP, model, settings, train_hint=TRAIN_HINT)
        engine = Engine.load(path, device=settings.resolve_device())
        engine.name = name
        config = settings.section("support")
        meta = engine.metadata.get("support", {})
        return cls(
            engine, model_name=name, settings=settings, prompts=prompts_for(settings, prompts_dir),
            index=CaseIndex.load(path) if meta.get("retrieval", True) else None,
            company=str(config.get("company") or meta.get("company") or DEFAULT_COMPANY),
            min_confidence=float(config.get("min_confidence", DEFAULT_MIN_CONFIDENCE)),
            policy=options["policy"] if "policy" in options else _load_policy(settings),
            mood=options["mood"] if "mood" in options else open_mood(settings),
        )

    @property
    def store(self) -> Store:
        if self._store is None:
            from appkit.store import open_store

            self._store = open_store(self.settings)
        return self._store

    # -- prompting -------------------------------------------------------------------------

    def prompt(self, history: Sequence[Message]) -> tuple[list[Message], Rendered]:
        """The model's input for ``history`` (ending with the customer's turn).

        Oldest turns are dropped first until the prompt leaves room for a reply; the system
        prompt (with the cases retrieved for what is left) is always kept. When the customer's
        last message alone does not leave room, fewer retrieved cases are shown (a long
        message outweighs a second example); a message too long even then is the engine's to refuse.
        """
        from apps.support.prompting import CASES_PER_PROMPT, system_message

        turns = [m for m in history if m["role"] != "system"]
        budget = self.engine.context_length - REPLY_ROOM
        cases = CASES_PER_PROMPT
        while True:
            system = system_message(self.prompts, self.company, turns, self.index, cases_per_prompt=cases)
            messages = [{"role": "system", "content": system.text}, *turns]
            if len(self.engine.prompt_ids(messages)) <= budget:
                return messages, system
            if len(turns) > 1:
                turns = turns[1:]
            elif cases > 0 and self.index is not None:
                cases -= 1
            else:
                return messages, system

    # -- stateless -------------------------------------------------------------------------

    def reply(self, message: str, history: Sequence[Message] = (), params: GenerationParams | None = None) -> BotReply:
        """Answer ``message`` after ``history`` without storing anything."""
        _check_message(message)
        if asks_for_human(message):
            return self._handoff_reply("asked_for_human")
        moderation: dict[str, Any] = {}
        if self.policy is not None:
            decision = self.policy.check(message, direction="input")
            moderation["input"] = decision.as_dict()
            if decision.action == "escalate":
                return self._handoff_reply("safety")
            if decision.action == "block":
                return BotReply(decision.text, moderation=moderation)
        messages, system = self.prompt([*history, {"role": "user", "content": message}])
        result = self.engine.reply(messages, params)
        if self.policy is not None:
            decision = self.policy.check(result.text, direction="output")
            moderation["output"] = decision.as_dict()
            result.text = decision.text
            if decision.action == "escalate":
                return self._handoff_reply("safety")
        confidence = result.stats.mean_logprob
        if confidence is not None and confidence < self.min_confidence:
            handoff = self._handoff_reply("low_confidence")
            handoff.text = f"{result.text}\n\n{handoff.text}".strip()
            handoff.confidence, handoff.stats = confidence, result.stats
            return handoff
        return BotReply(result.text, confidence=confidence, template=system.name,
                        template_version=system.version, stats=result.stats, moderation=moderation)

    def _handoff_reply(self, reason: str) -> BotReply:
        notice = self.prompts.render(HANDOFF_TEMPLATE, reason=reason)
        return BotReply(notice.text, escalated=True, reason=reason, template=notice.name,
                        template_version=notice.version)

    # -- stored conversations --------------------------------------------------------------

    def start(self, *, user: str | None = None, title: str | None = None) -> ConversationRecord:
        """Open a new stored conversation."""
        return self.store.create_conversation(APP, title=title, user=user)

    def stream(self, conversation: int | ConversationRecord, message: str,
               params: GenerationParams | None = None) -> SupportTurn:
        """Reply to ``message`` in a stored conversation; iterate the result for text pieces."""
        conversation_id = conversation if isinstance(conversation, int) else conversation.id
        _check_message(message)
        return SupportTurn(self, conversation_id, message, params)

    def history(self, conversation_id: int) -> list[Message]:
        """The conversation as model messages (failed replies left out)."""
        return [{"role": m.role, "content": m.content} for m in self.store.messages(conversation_id)
                if m.status != "error" and m.content]

    def last_reply(self, conversation_id: int) -> MessageRecord | None:
        """The most recent assistant message of a conversation."""
        replies = [m for m in self.store.messages(conversation_id) if m.role == "assistant"]
        return replies[-1] if replies else None

    def rate(self, message_id: int, rating: int, comment: str | None = None) -> FeedbackRecord:
        """Thumbs up (+1) or down (-1) on a reply, with an optional comment."""
        return self.store.add_feedback(message_id, rating, comment)

    def escalate(self, conversation_id: int, reason: str, *, direction: str = "input",
                 message_id: int | None = None) -> MessageRecord:
        """Hand the conversation to a human: status, handoff message, recorded event."""
        notice = self.prompts.render(HANDOFF_TEMPLATE, reason=reason)
        self.store.set_status(conversation_id, "escalated")
        self.store.record_moderation(app=APP, direction=direction, backend=f"handoff:{reason}", scores={},
                                     action="escalate", conversation_id=conversation_id, message_id=message_id)
        return self.store.append_message(conversation_id, "assistant", notice.text, model_name=None,
                                         template_name=notice.name, template_version=notice.version)

    def close(self) -> None:
        """Stop the engine and release the database."""
        self.engine.close()
        if self.mood is not None:
            self.mood.close()
        if self._store is not None:
            self._store.close()

    def describe(self) -> dict[str, Any]:
        """Model, size, device, retrieval and safety backend (for status bars)."""
        info = self.engine.describe()
        info["retrieval"] = self.index is not None
        info["safety"] = getattr(self.policy, "backend_name", None) or "off"
        info["sentiment"] = self.mood.model_name if self.mood is not None else "off"
        return info


class SupportTurn:
    """One customer message and the bot's streamed answer, stored as they happen.

    After iteration: ``user_message`` and ``reply_message`` are the stored records, ``text`` the
    reply, ``escalated``/``reason`` what the bot decided, ``stats`` the generation figures.
    """

    def __init__(self, bot: SupportBot, conversation_id: int, message: str, params: GenerationParams | None) -> None:
        self.bot = bot
        self.conversation_id = conversation_id
        self.message = message
        self.params = params
        self.user_message: MessageRecord | None = None
        self.reply_message: MessageRecord | None = None
        self.text = ""
        self.escalated = False
        self.reason = ""
        self.stats: ReplyStats | None = None
        self._stream: Any = None
        self._cancelled = False

    def cancel(self) -> None:
        """Stop generating; the partial reply is stored with status ``stopped``."""
        self._cancelled = True
        if self._stream is not None:
            self._stream.cancel()

    def __iter__(self) -> Iterator[str]:
        bot, store = self.bot, self.bot.store
        conv = store.get_conversation(self.conversation_id)
        # Everything that can reject the message runs before anything is written.
        messages, system = bot.prompt([*bot.history(conv.id), {"role": "user", "content": self.message}])
        bot.engine.check_fits(messages)
        decision_in = bot.policy.check(self.message, direction="input") if bot.policy is not None else None
        moderation_in = decision_in.as_dict() if decision_in is not None else None
        sentiment = bot.mood.score(self.message) if bot.mood is not None else None
        before = _last_customer_sentiment(store, conv.id) if sentiment is not None else None
        self.user_message = store.append_message(conv.id, "user", self.message, moderation=moderation_in,
                                                 sentiment=sentiment)
        if decision_in is not None:
            _record(bot, decision_in, conv.id, self.user_message.id)
        if conv.title is None:
            store.rename(conv.id, _title(self.message))

        if conv.status == "escalated":  # a human owns it now: acknowledge, don't improvise
            notice = bot.prompts.render(WAITING_TEMPLATE)
            self.reply_message = store.append_message(conv.id, "assistant", notice.text,
                                                      template_name=notice.name, template_version=notice.version)
            self.text = notice.text
            yield notice.text
            return
        reason = "asked_for_human" if asks_for_human(self.message) else ""
        if moderation_in and moderation_in.get("action") == "escalate":
            reason = "safety"
        if not reason and sentiment is not None and bot.mood is not None and bot.mood.dropped(before, sentiment):
            reason = "sentiment_drop"
        if reason:
            yield from self._handoff(reason, self.user_message.id)
            return
        if decision_in is not None and decision_in.action == "block":
            self.text = decision_in.text
            self.reply_message = store.append_message(conv.id, "assistant", self.text, moderation=moderation_in,
                                                      template_name="safety/blocked.j2")
            yield self.text
            return

        started = time.perf_counter()
        pieces: list[str] = []
        try:
            self._stream = bot.engine.stream(messages, self.params)
            if self._cancelled:
                self._stream.cancel()
            # The output is checked a sentence at a time as it streams: a toxic sentence is
            # replaced before it is shown in full.
            guarded = bot.policy.guard_stream(self._stream) if bot.policy is not None else self._stream
            for piece in guarded:
                pieces.append(piece)
                yield piece
        except Exception as e:
            # Never leave the customer's message without an answer or a recorded failure.
            store.append_message(conv.id, "assistant", "".join(pieces), status="error", error=str(e)[:2000],
                                 model_name=bot.model_name, template_name=system.name,
                                 template_version=system.version)
            if isinstance(e, AppkitError):
                raise
            raise GenerationError(f"the reply failed: {e}") from e
        self.stats = stats = self._stream.stats
        self.text = "".join(pieces).strip()
        stopped = self._cancelled or stats.finish_reason == "cancelled"
        decision_out = getattr(guarded, "decision", None)
        self.reply_message = store.append_message(
            conv.id, "assistant", self.text, status="stopped" if stopped else "ok", model_name=bot.model_name,
            moderation=decision_out.as_dict() if decision_out is not None else None,
            template_name=system.name, template_version=system.version,
            latency_ms=int((time.perf_counter() - started) * 1000), prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
        )
        if decision_out is not None:
            _record(bot, decision_out, conv.id, self.reply_message.id)
            if decision_out.action == "escalate":
                yield "\n\n"
                yield from self._handoff("safety", self.reply_message.id, direction="output")
                return
        confidence = stats.mean_logprob
        if not stopped and confidence is not None and confidence < bot.min_confidence:
            yield "\n\n"
            yield from self._handoff("low_confidence", self.reply_message.id, direction="output")

    def _handoff(self, reason: str, message_id: int, direction: str = "input") -> Iterator[str]:
        notice = self.bot.escalate(self.conversation_id, reason, direction=direction, message_id=message_id)
        self.escalated, self.reason = True, reason
        if self.reply_message is None:
            self.reply_message = notice
            self.text = notice.content
        yield notice.content


def _last_customer_sentiment(store: Any, conversation_id: int) -> dict[str, Any] | None:
    for m in reversed(store.messages(conversation_id)):
        if m.role == "user":
            return m.sentiment
    return None


def _check_message(message: str) -> None:
    if not message or not message.strip():
        raise GenerationError("the message is empty; type what the customer asked.")


def _title(message: str, limit: int = 60) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _record(bot: SupportBot, decision: Any, conversation_id: int, message_id: int) -> None:
    """Every safety decision becomes a moderation event."""
    from appkit.safety import record

    record(bot.store, decision, app=APP, conversation_id=conversation_id, message_id=message_id)


def _load_policy(settings: Settings) -> Any:
    """The support app's safety policy (its backend chosen by appkit.safety: auto by default)."""
    from appkit.safety import load_policy

    return load_policy(APP, settings)
