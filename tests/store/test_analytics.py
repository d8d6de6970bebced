"""What reports read (Store.activity) and promotions with rollback, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from appkit.errors import NotFoundError, StorageError
from appkit.store.models import Conversation


def _backdate(store, conversation_id: int, days: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(Conversation).where(Conversation.id == conversation_id)
                     .values(created_at=datetime.now(timezone.utc) - timedelta(days=days)))


def test_activity_holds_the_periods_conversations_with_what_was_recorded(store):
    resolved = store.create_conversation("support")
    question = store.append_message(resolved.id, "user", "where is my order 12345?",
                                    sentiment={"label": "neutral", "score": -0.25})
    reply = store.append_message(resolved.id, "assistant", "It ships today.", model_name="m1", latency_ms=120)
    store.add_feedback(reply.id, -1)
    store.add_feedback(reply.id, 1)  # changed their mind: the latest rating counts
    store.record_moderation("support", "input", "lexicon", "allow", {"toxicity": 0.01}, message_id=question.id,
                            conversation_id=resolved.id)
    store.set_status(resolved.id, "closed")

    handed = store.create_conversation("support")
    rude = store.append_message(handed.id, "user", "you idiots lost my parcel")
    store.record_moderation("support", "input", "detoxify:own", "flag", {"toxicity": 0.7, "insult": 0.9},
                            message_id=rude.id, conversation_id=handed.id)
    store.record_moderation("support", "input", "handoff:asked_for_human", "escalate", {}, message_id=rude.id,
                            conversation_id=handed.id)
    store.set_status(handed.id, "escalated")
    agent = store.append_message(handed.id, "assistant", "Sorry, I am looking into it.", author="agent:ann")

    old = store.create_conversation("support")
    store.append_message(old.id, "user", "an old question")
    _backdate(store, old.id, 10)
    store.create_conversation("writer")

    now = datetime.now(timezone.utc)
    activity = store.activity("support", now - timedelta(days=7), now + timedelta(seconds=1))
    assert [c.id for c in activity.conversations] == [resolved.id, handed.id]
    assert [c.status for c in activity.conversations] == ["closed", "escalated"]
    assert [(m.conversation_id, m.seq, m.role) for m in activity.messages] == [
        (resolved.id, 1, "user"), (resolved.id, 2, "assistant"), (handed.id, 1, "user"), (handed.id, 2, "assistant")]
    first = activity.messages[0]
    assert first.sentiment == pytest.approx(-0.25) and first.content == "where is my order 12345?"
    assert activity.messages[1].content == ""  # replies are not read: reports show customers' words only
    assert activity.messages[1].model_name == "m1" and activity.messages[1].latency_ms == 120
    assert activity.messages[2].sentiment is None
    assert activity.messages[3].author == "agent:ann" and activity.messages[3].id == agent.id
    assert activity.ratings == {reply.id: 1}
    assert [(h.conversation_id, h.message_id, h.reason) for h in activity.handoffs] == [
        (handed.id, rude.id, "asked_for_human")]
    assert [(s.direction, s.action, s.label) for s in activity.safety] == [("input", "flag", "insult")]

    assert store.activity("support", now - timedelta(days=30), now - timedelta(days=8)).conversations[0].id == old.id
    assert store.activity("support", now + timedelta(days=1), now + timedelta(days=2)).conversations == []
    count, first_at, last_at = store.conversation_span("support")
    assert count == 3 and first_at < now - timedelta(days=9) and last_at <= now + timedelta(seconds=1)
    assert store.conversation_span("nothing") == (0, None, None)


def test_a_promotion_remembers_what_it_replaced_and_rollback_undoes_it(store):
    store.register_model("v1", "support", "/m/v1", status="active")
    store.register_model("v2", "support", "/m/v2")
    assert store.get_model("v1").previous is None
    promoted = store.promote("v2")
    assert promoted.status == "active" and promoted.previous == "v1" and promoted.promoted_at is not None
    assert store.promote("v2").previous == "v1"  # promoting the active model again changes nothing
    store.register_model("v3", "support", "/m/v3", status="active")  # training registers as active
    assert store.active_model("support").previous == "v2"

    back, retired = store.rollback("support")
    assert (back.name, back.status, retired.name, retired.status) == ("v2", "active", "v3", "archived")
    back, retired = store.rollback("support")
    assert (back.name, retired.name) == ("v1", "v2")
    assert store.active_model("support").name == "v1"
    with pytest.raises(StorageError, match="nothing to roll back to"):
        store.rollback("support")
    with pytest.raises(NotFoundError, match="no active model"):
        store.rollback("writer")


def test_rollback_to_a_model_no_longer_registered_is_refused(store):
    store.register_model("a", "support", "/m/a", status="active")
    store.register_model("b", "support", "/m/b", status="active")
    with store.engine.begin() as conn:
        from sqlalchemy import delete

        from appkit.store.models import ModelEntry

        conn.execute(delete(ModelEntry).where(ModelEntry.name == "a"))
    with pytest.raises(NotFoundError, match="'a', which is no longer a registered"):
        store.rollback("support")
    assert store.active_model("support").name == "b"  # nothing changed
