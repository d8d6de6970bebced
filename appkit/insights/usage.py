"""How an app did in a period: volume, resolution, handoffs, ratings, mood, safety, latency, per model.

Everything here is computed from :class:`appkit.store.analytics.Activity` (the period's
conversations and what was recorded about them), so the same numbers come out of SQLite and
PostgreSQL. A conversation is

- *handed over* when the bot gave it to a person (a handoff event, or status ``escalated``);
- *resolved* when it was closed (or archived) without a handoff;
- *open* otherwise (still going, or the customer left without it being closed).

A conversation belongs to the model that wrote its first reply, so two models serving in the
same weeks can be compared side by side.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.insights.period import Period
    from appkit.store.analytics import Activity, MessageRow

NO_MODEL = "(no reply)"  # conversations handed over before the bot wrote anything
OUTCOMES = ("resolved", "handed_over", "open")


@dataclass
class Turn:
    """One customer message and what became of it."""

    message_id: int
    conversation_id: int
    day: date
    text: str
    model: str | None  # the model that answered it
    handed_over: bool  # the bot handed the conversation over at this message
    with_human: bool  # a person had the conversation already (the bot did not answer)
    rating: int | None  # the rating of the bot's answer to it


@dataclass
class Mood:
    """Customers' sentiment (-1..1) at the start and the end of their conversations."""

    conversations: int = 0  # with at least one scored customer message
    start: float | None = None  # mean score of each conversation's first scored message
    end: float | None = None  # mean score of each one's last scored message
    compared: int = 0  # conversations with two or more scored messages
    improved: int = 0  # end - start >= 0.25
    worsened: int = 0  # end - start <= -0.25


@dataclass
class ModelUsage:
    """One model's share of the period."""

    model: str
    conversations: int = 0
    replies: int = 0
    resolved: int = 0
    handed_over: int = 0
    open: int = 0
    rated: int = 0
    positive: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    mood: Mood = field(default_factory=Mood)

    @property
    def positive_share(self) -> float | None:
        return self.positive / self.rated if self.rated else None

    @property
    def resolved_share(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None

    @property
    def handed_over_share(self) -> float | None:
        return self.handed_over / self.conversations if self.conversations else None


@dataclass
class DayUsage:
    day: date
    conversations: int = 0
    customer_messages: int = 0
    resolved: int = 0
    handed_over: int = 0
    open: int = 0


@dataclass
class Usage:
    """The period's numbers; ``total`` is every model together."""

    conversations: int
    customer_messages: int
    bot_replies: int
    agent_replies: int
    days: list[DayUsage]
    handoff_reasons: dict[str, int]
    safety: list[tuple[str, str, str, int]]  # (direction, action, label, count), most first
    total: ModelUsage
    models: list[ModelUsage]
    turns: list[Turn] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        def model(m: ModelUsage) -> dict[str, Any]:
            return {**asdict(m), "positive_share": m.positive_share, "resolved_share": m.resolved_share,
                    "handed_over_share": m.handed_over_share}

        return {"conversations": self.conversations, "customer_messages": self.customer_messages,
                "bot_replies": self.bot_replies, "agent_replies": self.agent_replies,
                "days": [{**asdict(d), "day": d.day.isoformat()} for d in self.days],
                "handoff_reasons": self.handoff_reasons,
                "safety": [{"direction": d, "action": a, "label": label, "count": n} for d, a, label, n in self.safety],
                "total": model(self.total), "models": [model(m) for m in self.models]}


def is_bot_reply(m: MessageRow) -> bool:
    """A reply a model wrote (not a person, not a template notice)."""
    return m.role == "assistant" and m.author is None and m.model_name is not None


def summarize(activity: Activity, period: Period) -> Usage:
    """The period's numbers from its activity."""
    import numpy as np

    by_conv: dict[int, list[MessageRow]] = defaultdict(list)
    for m in activity.messages:
        by_conv[m.conversation_id].append(m)
    handoffs: dict[int, list[Any]] = defaultdict(list)
    for h in activity.handoffs:
        handoffs[h.conversation_id].append(h)

    days = {d: DayUsage(d) for d in period.days}
    models: dict[str, ModelUsage] = {}
    total = ModelUsage("all models")
    latencies: dict[str, list[int]] = defaultdict(list)
    moods: dict[str, list[list[float]]] = defaultdict(list)
    turns: list[Turn] = []
    reasons: Counter[str] = Counter()
    for conv in activity.conversations:
        messages = by_conv.get(conv.id, [])
        replies = [m for m in messages if is_bot_reply(m)]
        name = replies[0].model_name if replies else NO_MODEL
        usage = models.setdefault(name, ModelUsage(name))
        if handoffs.get(conv.id) or conv.status == "escalated":
            outcome = "handed_over"
            reasons[handoffs[conv.id][0].reason if handoffs.get(conv.id) else "unknown"] += 1
        elif conv.status in ("closed", "archived"):
            outcome = "resolved"
        else:
            outcome = "open"
        day = days.get(conv.created_at.date())
        for target in (usage, total, day):
            if target is not None:
                target.conversations += 1
                setattr(target, outcome, getattr(target, outcome) + 1)
        for m in replies:  # a conversation can hold replies of several models (a promotion mid-way)
            writer = models.setdefault(str(m.model_name), ModelUsage(str(m.model_name)))
            writer.replies += 1
            rating = activity.ratings.get(m.id)
            if rating is not None:
                writer.rated += 1
                writer.positive += rating > 0
            if m.latency_ms is not None and m.status in ("ok", "stopped"):
                latencies[writer.model].append(m.latency_ms)
        scores = [m.sentiment for m in messages if m.role == "user" and m.sentiment is not None]
        if scores:
            moods[name].append(scores)
        turns += _turns(messages, handoffs.get(conv.id, []), activity.ratings)
        for m in messages:
            if m.role == "user" and m.created_at.date() in days:
                days[m.created_at.date()].customer_messages += 1

    for name, usage in models.items():
        _latency(usage, latencies.get(name, []), np)
        usage.mood = _mood(moods.get(name, []))
    total.replies = sum(u.replies for u in models.values())
    total.rated = sum(u.rated for u in models.values())
    total.positive = sum(u.positive for u in models.values())
    _latency(total, [x for values in latencies.values() for x in values], np)
    total.mood = _mood([s for values in moods.values() for s in values])
    safety = Counter((s.direction, s.action, s.label) for s in activity.safety)
    return Usage(
        conversations=len(activity.conversations),
        customer_messages=sum(m.role == "user" for m in activity.messages),
        bot_replies=total.replies,
        agent_replies=sum(m.role == "assistant" and m.author is not None for m in activity.messages),
        days=list(days.values()), handoff_reasons=dict(reasons.most_common()),
        safety=[(*key, n) for key, n in safety.most_common()], total=total,
        models=sorted(models.values(), key=lambda u: (u.model == NO_MODEL, -u.conversations, u.model)),
        turns=turns,
    )


def _turns(messages: list[MessageRow], handoffs: list[Any], ratings: dict[int, int]) -> list[Turn]:
    """Each customer message of one conversation with what followed it (up to the next one)."""
    ids = {m.id for m in messages}
    handed_at = {h.message_id for h in handoffs if h.message_id in ids}
    for h in handoffs:  # a handoff not tied to a message (e.g. by the API): the customer's last message before it
        if h.message_id not in ids:
            before = [m for m in messages if m.role == "user" and m.created_at <= h.created_at]
            if before:
                handed_at.add(before[-1].id)
    out: list[Turn] = []
    human = False
    for i, m in enumerate(messages):
        if m.role != "user":
            continue
        following = []
        for later in messages[i + 1:]:
            if later.role == "user":
                break
            following.append(later)
        reply = next((r for r in following if is_bot_reply(r)), None)
        handed = m.id in handed_at or any(r.id in handed_at for r in following)
        out.append(Turn(m.id, m.conversation_id, m.created_at.date(), m.content,
                        reply.model_name if reply is not None else None, handed and not human, human,
                        ratings.get(reply.id) if reply is not None else None))
        human = human or handed
    return out


def _latency(usage: ModelUsage, values: list[int], np: Any) -> None:
    if values:
        p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
        usage.latency_p50_ms, usage.latency_p95_ms = float(p50), float(p95)


def _mood(conversations: list[list[float]]) -> Mood:
    if not conversations:
        return Mood()
    starts = [s[0] for s in conversations]
    ends = [s[-1] for s in conversations]
    changes = [s[-1] - s[0] for s in conversations if len(s) > 1]
    return Mood(conversations=len(conversations), start=sum(starts) / len(starts), end=sum(ends) / len(ends),
                compared=len(changes), improved=sum(c >= 0.25 for c in changes),
                worsened=sum(c <= -0.25 for c in changes))
