"""Generated conversations for report tests: known outcomes, ratings, moods, latencies, topics."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update

from appkit.store.models import Conversation, Message

KNOWN = {  # intents the model was trained on: customer wordings
    "order": ["where is my order", "has my order shipped yet", "track my package please", "when will my parcel arrive",
              "my order still has not arrived", "where is my parcel now"],
    "refund": ["I want a refund", "can I get my money back", "please refund my purchase", "how do I get a refund",
               "refund my order please", "I would like my money back"],
    "password": ["I forgot my password", "reset my password", "I cannot log in to my account",
                 "my login does not work", "password reset please", "how do I change my password"],
}
NEW = ["how do I cancel my subscription", "cancel the subscription to the magazine", "stop my magazine subscription",
       "I want to end my subscription", "unsubscribe me from the magazine subscription",
       "cancel subscription renewal for the magazine"]


def reference_texts(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(training texts, their intents, held-out texts): the known intents only."""
    rng = random.Random(seed)
    texts, labels, held = [], [], []
    for intent, wordings in KNOWN.items():
        for w in wordings:
            for suffix in ("", "?", " thanks", " asap", " today", " please help"):
                texts.append(w + suffix)
                labels.append(intent)
        held += [rng.choice(wordings) + " " + rng.choice(["!", "now", "quickly", "again"]) for _ in range(6)]
    return texts, labels, held


def backdate(store: Any, conversation_id: int, when: datetime) -> None:
    """Move a conversation and its messages to ``when`` (the Store API stamps them now)."""
    with store.engine.begin() as conn:
        conn.execute(update(Conversation).where(Conversation.id == conversation_id).values(created_at=when))
        conn.execute(update(Message).where(Message.conversation_id == conversation_id).values(created_at=when))


def conversation(store: Any, texts: list[str], *, model: str | None = "m1", latency: int = 100,
                 handoff: str | None = None, rating: int | None = None, moods: list[float] | None = None,
                 close: bool = True, when: datetime | None = None, agent: str | None = None) -> int:
    """One stored support conversation: the customer's ``texts``, the bot's replies, then what happened."""
    conv = store.create_conversation("support")
    last_user = None
    for i, text in enumerate(texts):
        mood = {"label": "x", "score": moods[i]} if moods else None
        last_user = store.append_message(conv.id, "user", text, sentiment=mood)
        if handoff and i == len(texts) - 1:
            break
        reply = store.append_message(conv.id, "assistant", "a reply", model_name=model, latency_ms=latency)
        if rating is not None and i == len(texts) - 1:
            store.add_feedback(reply.id, rating)
    if handoff:
        store.record_moderation("support", "input", f"handoff:{handoff}", "escalate", {}, conversation_id=conv.id,
                                message_id=last_user.id)
        store.set_status(conv.id, "escalated")
        store.append_message(conv.id, "assistant", "A person will answer.", template_name="support/handoff.j2")
        if agent:
            store.agent_reply(conv.id, agent)
    elif close:
        store.set_status(conv.id, "closed")
    if when is not None:
        backdate(store, conv.id, when)
    return conv.id


def days_ago(n: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=n)
