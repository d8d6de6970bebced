"""The support bot: stored conversations, grounded replies, handoff to humans, feedback.

    bot = appkit.load_app("support")
    conv = bot.start(user="u1")
    for piece in bot.stream(conv.id, "where is my order?"):
        print(piece, end="")
    bot.rate(bot.last_reply(conv.id).id, +1)

``reply(message, history)`` is the stateless form (nothing stored), used by evaluations and
audits. Everything the stored form does lands in the database: the customer's message, the
reply with its model, template version, latency and token counts, how it was grounded (reply
mode, the past case it came from, the candidates' scores), the safety decisions, and the
handoff when the bot gives the conversation to a human.

Replies are made in one of three modes (apps/support/replies.py): ``grounded`` (default),
``select`` and ``generate``; ``[support] reply_mode`` in appkit.toml, ``reply_mode=`` when
opening the app, or ``mode=`` per call chooses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.config import Settings, load_settings
from appkit.errors import AppkitError, GenerationError
from apps.support.handoff import asks_for_human
from apps.support.settings import DEFAULTS

if TYPE_CHECKING:
    from appkit.engine import Engine, GenerationParams, ReplyStats
    from appkit.prompts import Prompts, Rendered
    from appkit.store import ConversationRecord, FeedbackRecord, MessageRecord, Store
    from apps.support.grounding import Grounder
    from apps.support.mood import CustomerMood
    from apps.support.replies import Draft, Replier
    from apps.support.settings import SupportSettings

Message = dict[str, str]
APP = "support"
HANDOFF_TEMPLATE = "support/handoff.j2"
WAITING_TEMPLATE = "support/waiting.j2"


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
    grounding: dict[str, Any] = field(default_factory=dict)  # mode, source case, scores
    blocked: bool = False  # the safety policy replaced the reply (or refused the message)


class SupportBot:
    """A loaded support model, its prompts, its case index and its conversation store."""

    def __init__(self, engine: Engine, *, model_name: str, settings: Settings, prompts: Prompts,
                 grounder: Grounder | None, company: str, min_confidence: float = DEFAULTS.min_confidence,
                 policy: Any = None, mood: CustomerMood | None = None, reply_mode: str = "grounded",
                 prompt_cases: int = 0, topics: bool = False, facts: dict[str, str] | None = None,
                 model_dir: Path | None = None) -> None:
        from apps.support.replies import Replier, check_mode

        self.engine = engine
        self.model_name = model_name
        self.model_dir = model_dir
        self.settings = settings
        self.prompts = prompts
        self.grounder = grounder
        self.company = company
        self.min_confidence = min_confidence
        self.policy = policy
        self.mood = mood
        self.reply_mode = check_mode(reply_mode if grounder is not None else "generate")
        self.prompt_cases = prompt_cases if grounder is not None else 0
        self.topics = topics and grounder is not None  # the model was trained reading the router's topic
        self.replier: Replier = Replier(engine, prompts, grounder, facts=facts, company=company)
        self._store: Store | None = None

    @property
    def index(self) -> Any:
        """The case index replies are grounded on (None for a model trained without one)."""
        return self.grounder.index if self.grounder is not None else None

    @classmethod
    def open(cls, *, model: str | None = None, settings: Settings | None = None, prompts_dir: str | None = None,
             reply_mode: str | None = None, **options: Any) -> SupportBot:
        """Load the active support model (or ``model``: a registered name or a directory).

        ``reply_mode``: grounded, select or generate (default: ``[support] reply_mode``).
        """
        from appkit.engine import Engine
        from appkit.models import resolve_model_path
        from appkit.prompts import prompts_for
        from apps.support.app import TRAIN_HINT
        from apps.support.cases import CaseIndex
        from apps.support.grounding import Grounder, load_weights
        from apps.support.mood import open_mood
        from apps.support.prompting import DEFAULT_COMPANY
        from apps.support.replies import check_mode

        settings = settings or load_settings()
        config: SupportSettings = settings.app(APP)
        mode = check_mode(reply_mode or config.reply_mode)
        name, path = resolve_model_path(APP, model, settings, train_hint=TRAIN_HINT)
        engine = Engine.load(path, device=settings.resolve_device())
        engine.name = name
        meta = engine.metadata.get("support", {})
        index = CaseIndex.load(path) if meta.get("retrieval", True) else None
        return cls(
            engine, model_name=name, settings=settings, prompts=prompts_for(settings, prompts_dir),
            grounder=Grounder(index, load_weights(path)) if index is not None else None,
            company=config.company or str(meta.get("company") or DEFAULT_COMPANY),
            min_confidence=config.min_confidence,
            policy=options["policy"] if "policy" in options else _load_policy(settings),
            mood=options["mood"] if "mood" in options else open_mood(settings),
            reply_mode=mode, prompt_cases=int(meta.get("prompt_cases", 2)), topics=bool(meta.get("topics", False)),
            facts={k: str(v) for k, v in config.facts.items()},
            model_dir=Path(path),
        )

    @property
    def store(self) -> Store:
        if self._store is None:
            from appkit.store import open_store

            self._store = open_store(self.settings)
        return self._store

    # -- prompting -------------------------------------------------------------------------

    def prompt(self, history: Sequence[Message]) -> tuple[list[Message], Rendered]:
        """The model's input for ``history`` (ending with the customer's turn): see
        ``prompting.model_prompt``."""
        from apps.support.prompting import model_prompt

        return model_prompt(self.engine, self.prompts, self.company, history, self.index, topics=self.topics,
                            cases_per_prompt=self.prompt_cases)

    # -- stateless -------------------------------------------------------------------------

    def reply(self, message: str, history: Sequence[Message] = (), params: GenerationParams | None = None,
              *, mode: str | None = None) -> BotReply:
        """Answer ``message`` after ``history`` without storing anything."""
        from apps.support.replies import check_mode, describe_grounding

        _check_message(message)
        mode = check_mode(mode) if mode else self.reply_mode
        if asks_for_human(message):
            return self._handoff_reply("asked_for_human")
        moderation: dict[str, Any] = {}
        if self.policy is not None:
            decision = self.policy.check(message, direction="input")
            moderation["input"] = decision.as_dict()
            if decision.action == "escalate":
                return self._handoff_reply("safety")
            if decision.action == "block":
                return BotReply(decision.text, moderation=moderation, blocked=True)
        history = [*history, {"role": "user", "content": message}]
        messages, system = self.prompt(history)
        draft = self.draft(history, messages, mode, params)
        text = "".join(draft.pieces).strip()
        grounding = describe_grounding(draft.grounding, draft.stats)
        blocked = False
        if self.policy is not None:
            decision = self.policy.check(text, direction="output")
            moderation["output"] = decision.as_dict()
            text, blocked = decision.text, decision.action == "block"
            if decision.action == "escalate":
                return self._handoff_reply("safety")
        confidence = draft.stats.mean_logprob if draft.stats is not None else draft.grounding.confidence
        if self._unsure(draft):
            handoff = self._handoff_reply("low_confidence")
            handoff.text = f"{text}\n\n{handoff.text}".strip() if draft.stats is not None else handoff.text
            handoff.confidence, handoff.stats, handoff.grounding = confidence, draft.stats, grounding
            return handoff
        return BotReply(text, confidence=confidence, template=system.name, template_version=system.version,
                        stats=draft.stats, moderation=moderation, grounding=grounding, blocked=blocked)

    def draft(self, history: Sequence[Message], messages: list[Message], mode: str,
              params: GenerationParams | None = None) -> Draft:
        """Start a reply to ``history`` in ``mode`` (``messages``: the model's prompt for it)."""
        return self.replier.draft(history, messages, mode, params)

    def _unsure(self, draft: Draft) -> bool:
        """No candidate fitted (select), or the model guessed its own reply (generated)."""
        if draft.unsure:
            return True
        confidence = draft.stats.mean_logprob if draft.stats is not None else None
        cancelled = draft.stats is not None and draft.stats.finish_reason == "cancelled"
        return not cancelled and confidence is not None and confidence < self.min_confidence

    def _handoff_reply(self, reason: str) -> BotReply:
        notice = self.prompts.render(HANDOFF_TEMPLATE, reason=reason)
        return BotReply(notice.text, escalated=True, reason=reason, template=notice.name,
                        template_version=notice.version)

    # -- stored conversations --------------------------------------------------------------

    def start(self, *, user: str | None = None, title: str | None = None) -> ConversationRecord:
        """Open a new stored conversation."""
        return self.store.create_conversation(APP, title=title, user=user)

    def stream(self, conversation: int | ConversationRecord, message: str,
               params: GenerationParams | None = None, *, mode: str | None = None) -> SupportTurn:
        """Reply to ``message`` in a stored conversation; iterate the result for text pieces."""
        from apps.support.replies import check_mode

        conversation_id = conversation if isinstance(conversation, int) else conversation.id
        _check_message(message)
        return SupportTurn(self, conversation_id, message, params, check_mode(mode) if mode else self.reply_mode)

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
                 message_id: int | None = None, grounding: dict[str, Any] | None = None) -> MessageRecord:
        """Hand the conversation to a human: status, handoff message, recorded event."""
        notice = self.prompts.render(HANDOFF_TEMPLATE, reason=reason)
        self.store.set_status(conversation_id, "escalated")
        self.store.record_moderation(app=APP, direction=direction, backend=f"handoff:{reason}", scores={},
                                     action="escalate", conversation_id=conversation_id, message_id=message_id)
        return self.store.append_message(conversation_id, "assistant", notice.text, model_name=None,
                                         template_name=notice.name, template_version=notice.version,
                                         grounding=grounding)

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
        info["reply_mode"] = self.reply_mode
        info["safety"] = getattr(self.policy, "backend_name", None) or "off"
        info["sentiment"] = self.mood.model_name if self.mood is not None else "off"
        return info


class SupportTurn:
    """One customer message and the bot's streamed answer, stored as they happen.

    After iteration: ``user_message`` and ``reply_message`` are the stored records, ``text`` the
    reply, ``escalated``/``reason`` what the bot decided, ``stats`` the generation figures (None
    for a chosen past reply), ``grounding`` how the reply was made.
    """

    def __init__(self, bot: SupportBot, conversation_id: int, message: str, params: GenerationParams | None,
                 mode: str = "grounded") -> None:
        self.bot = bot
        self.conversation_id = conversation_id
        self.message = message
        self.params = params
        self.mode = mode
        self.grounding: dict[str, Any] = {}
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
        conv = self.bot.store.get_conversation(self.conversation_id)
        history, messages, system, decision_in, reason = self._receive(conv)
        without_model = self._without_model(conv, decision_in, reason)
        if without_model is not None:
            yield from without_model
            return
        yield from self._answer(conv.id, history, messages, system)

    def _receive(self, conv: Any) -> tuple[list[Message], list[Message], Any, Any, str]:
        """Check and store the customer's message: (history, model input, system prompt, input
        safety decision, why a human should take over or ""). Everything that can reject the
        message runs before anything is written."""
        bot, store = self.bot, self.bot.store
        history = [*bot.history(conv.id), {"role": "user", "content": self.message}]
        messages, system = bot.prompt(history)
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
        reason = "asked_for_human" if asks_for_human(self.message) else ""
        if decision_in is not None and decision_in.action == "escalate":
            reason = "safety"
        if not reason and sentiment is not None and bot.mood is not None and bot.mood.dropped(before, sentiment):
            reason = "sentiment_drop"
        return history, messages, system, decision_in, reason

    def _without_model(self, conv: Any, decision_in: Any, reason: str) -> Iterator[str] | None:
        """The answer when the model has no say (a human owns the conversation or should, or the
        message was blocked); None when the bot answers."""
        store = self.bot.store
        assert self.user_message is not None
        if conv.status == "escalated":  # a human owns it now: acknowledge, don't improvise
            notice = self.bot.prompts.render(WAITING_TEMPLATE)
            self.reply_message = store.append_message(conv.id, "assistant", notice.text,
                                                      template_name=notice.name, template_version=notice.version)
            self.text = notice.text
            return iter([notice.text])
        if reason:
            return self._handoff(reason, self.user_message.id)
        if decision_in is not None and decision_in.action == "block":
            self.text = decision_in.text
            self.reply_message = store.append_message(conv.id, "assistant", self.text, moderation=decision_in.as_dict(),
                                                      status="blocked", template_name="safety/blocked.j2")
            return iter([self.text])
        return None

    def _answer(self, conversation_id: int, history: list[Message], messages: list[Message],
                system: Any) -> Iterator[str]:
        """Draft the reply, stream it to the customer and store it (or hand over when nothing fits)."""
        from apps.support.replies import describe_grounding

        bot, store = self.bot, self.bot.store
        assert self.user_message is not None
        started = time.perf_counter()
        pieces: list[str] = []
        try:
            draft = bot.draft(history, messages, self.mode, self.params)
            if draft.unsure and draft.stream is None:  # no past reply fits: a human answers
                self.grounding = describe_grounding(draft.grounding)
                yield from self._handoff("low_confidence", self.user_message.id, direction="output",
                                         grounding=self.grounding)
                return
            self._stream = draft.stream
            if self._cancelled and self._stream is not None:
                self._stream.cancel()
            # The output is checked a sentence at a time as it streams: a toxic sentence is
            # replaced before it is shown in full.
            guarded = bot.policy.guard_stream(draft.pieces) if bot.policy is not None else draft.pieces
            for piece in guarded:
                if self._cancelled and self._stream is None:
                    break  # a chosen reply being shown: stop showing it
                pieces.append(piece)
                yield piece
        except Exception as e:
            # Never leave the customer's message without an answer or a recorded failure.
            store.append_message(conversation_id, "assistant", "".join(pieces), status="error", error=str(e)[:2000],
                                 model_name=bot.model_name, template_name=system.name,
                                 template_version=system.version)
            if isinstance(e, AppkitError):
                raise
            raise GenerationError(f"the reply failed: {e}") from e
        self.stats = stats = draft.stats
        self.text = "".join(pieces).strip()
        decision_out = getattr(guarded, "decision", None)
        # A reply the policy blocked is "blocked" whether or not the model had finished when it did.
        blocked = decision_out is not None and decision_out.action == "block"
        stopped = not blocked and (self._cancelled or (stats is not None and stats.finish_reason == "cancelled"))
        if draft.grounding.chosen.source == "generated":
            draft.grounding.chosen.text = self.text
        self.grounding = describe_grounding(draft.grounding, stats)
        self.reply_message = store.append_message(
            conversation_id, "assistant", self.text,
            status="blocked" if blocked else "stopped" if stopped else "ok",
            model_name=bot.model_name, moderation=decision_out.as_dict() if decision_out is not None else None,
            template_name=system.name, template_version=system.version, grounding=self.grounding,
            latency_ms=int((time.perf_counter() - started) * 1000),
            prompt_tokens=stats.prompt_tokens if stats is not None else None,
            completion_tokens=stats.completion_tokens if stats is not None else None,
        )
        if decision_out is not None:
            _record(bot, decision_out, conversation_id, self.reply_message.id)
            if decision_out.action == "escalate":
                yield "\n\n"
                yield from self._handoff("safety", self.reply_message.id, direction="output")
                return
        if not stopped and not blocked and bot._unsure(draft):
            if self.text:
                yield "\n\n"
            yield from self._handoff("low_confidence", self.reply_message.id, direction="output")

    def _handoff(self, reason: str, message_id: int, direction: str = "input",
                 grounding: dict[str, Any] | None = None) -> Iterator[str]:
        notice = self.bot.escalate(self.conversation_id, reason, direction=direction, message_id=message_id,
                                   grounding=grounding)
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
