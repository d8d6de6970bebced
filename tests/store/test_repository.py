"""Repository API on both backends: CRUD, search, feedback, moderation, registry, runs, docs."""

from __future__ import annotations

import dataclasses
from datetime import timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from appkit.errors import NotFoundError, StorageError
from appkit.store import Store


def test_conversation_crud(store: Store) -> None:
    a = store.create_conversation("support", title="Order 1234", user="cust-1")
    b = store.create_conversation("support")
    c = store.create_conversation("writer", title="Draft")
    assert (a.app, a.title, a.status, a.external_user_id) == ("support", "Order 1234", "open", "cust-1")
    assert a.message_count == 0
    assert a.created_at.tzinfo == timezone.utc

    store.append_message(a.id, "user", "Hi")
    got = store.get_conversation(a.id)
    assert got.message_count == 1 and got.updated_at >= a.updated_at

    # Newest activity first: a got a message after b and c were created.
    assert [x.id for x in store.list_conversations()] == [a.id, c.id, b.id]
    assert [x.id for x in store.list_conversations(app="support")] == [a.id, b.id]
    assert [x.id for x in store.list_conversations(limit=1)] == [a.id]
    assert [x.id for x in store.list_conversations(limit=2, offset=1)] == [c.id, b.id]

    assert store.rename(b.id, "Refund").title == "Refund"
    assert store.set_status(b.id, "escalated").status == "escalated"
    assert [x.id for x in store.list_conversations(status="escalated")] == [b.id]
    with pytest.raises(StorageError, match="'pending' is not one of open, escalated, closed, archived"):
        store.set_status(b.id, "pending")

    store.delete_conversation(c.id)
    with pytest.raises(NotFoundError, match="conversation 424242 does not exist"):
        store.get_conversation(424242)
    for call in (
        lambda: store.get_conversation(c.id),
        lambda: store.messages(c.id),
        lambda: store.rename(c.id, "x"),
        lambda: store.set_status(c.id, "open"),
        lambda: store.append_message(c.id, "user", "x"),
        lambda: store.delete_conversation(c.id),
        lambda: store.feedback_for(c.id),
    ):
        with pytest.raises(NotFoundError, match=f"conversation {c.id} does not exist"):
            call()


def test_search_titles_and_message_text(store: Store) -> None:
    a = store.create_conversation("support", title="Where is my ORDER?")
    b = store.create_conversation("support", title="Login trouble")
    store.append_message(b.id, "user", "The password reset email never arrives")
    c = store.create_conversation("support", title="100% refund")
    store.append_message(c.id, "user", "snake_case text")

    assert {x.id for x in store.list_conversations(search="order")} == {a.id}
    assert {x.id for x in store.list_conversations(search="RESET EMAIL")} == {b.id}
    # LIKE wildcards in the search are literal characters.
    assert {x.id for x in store.list_conversations(search="100%")} == {c.id}
    assert {x.id for x in store.list_conversations(search="%")} == {c.id}
    assert {x.id for x in store.list_conversations(search="e_c")} == {c.id}
    assert store.list_conversations(search="nothing like this") == []
    assert {x.id for x in store.list_conversations(app="writer", search="order")} == set()


def test_messages_keep_order_and_fields(store: Store) -> None:
    conv = store.create_conversation("support")
    store.append_message(conv.id, "system", "You are helpful.")
    store.append_message(conv.id, "user", "héllo ✓")
    reply = store.append_message(
        conv.id,
        "assistant",
        "Hi!",
        model_name="support-v1",
        template_name="support/chat.j2",
        template_version="3",
        latency_ms=120,
        prompt_tokens=42,
        completion_tokens=7,
        moderation={"action": "allow", "scores": {"toxicity": 0.01}},
        sentiment={"label": "positive", "score": 0.93},
    )
    msgs = store.messages(conv.id)
    assert [(m.seq, m.role, m.content) for m in msgs] == [
        (1, "system", "You are helpful."),
        (2, "user", "héllo ✓"),
        (3, "assistant", "Hi!"),
    ]
    assert msgs[2] == reply
    assert reply.moderation == {"action": "allow", "scores": {"toxicity": 0.01}}
    assert reply.sentiment == {"label": "positive", "score": 0.93}
    assert (reply.latency_ms, reply.prompt_tokens, reply.completion_tokens) == (120, 42, 7)
    assert reply.created_at.tzinfo == timezone.utc and reply.status == "ok"
    assert msgs[0].id < msgs[1].id < msgs[2].id  # ids are the global order

    # Records are plain frozen values, usable after their session is gone.
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.content = "x"  # type: ignore[misc]

    stopped = store.append_message(conv.id, "assistant", "Par", status="stopped")
    updated = store.update_message(stopped.id, content="Partial answer", latency_ms=5)
    assert (updated.content, updated.status, updated.latency_ms) == ("Partial answer", "stopped", 5)
    failed = store.append_message(conv.id, "assistant", "", status="error", error="CUDA out of memory")
    assert store.get_message(failed.id).error == "CUDA out of memory"

    with pytest.raises(StorageError, match="role 'bot' is not one of system, user, assistant"):
        store.append_message(conv.id, "bot", "x")
    with pytest.raises(StorageError, match="message status 'weird'"):
        store.append_message(conv.id, "user", "x", status="weird")
    with pytest.raises(StorageError, match="unknown message field"):
        store.append_message(conv.id, "user", "x", temperature=0.7)
    with pytest.raises(NotFoundError, match="message 99999 does not exist"):
        store.update_message(99999, content="x")
    assert len(store.messages(conv.id)) == 5


def test_closed_conversations_take_no_messages(store: Store) -> None:
    conv = store.create_conversation("support")
    store.append_message(conv.id, "user", "thanks, bye")
    for status in ("closed", "archived"):
        store.set_status(conv.id, status)
        with pytest.raises(StorageError, match=f"conversation {conv.id} is {status}"):
            store.append_message(conv.id, "user", "one more thing")
    store.set_status(conv.id, "escalated")  # a human agent can still answer
    assert store.append_message(conv.id, "assistant", "An agent will reply.").seq == 2


def test_feedback(store: Store) -> None:
    conv = store.create_conversation("support")
    other = store.create_conversation("support")
    m1 = store.append_message(conv.id, "assistant", "a")
    m2 = store.append_message(conv.id, "assistant", "b")
    m3 = store.append_message(other.id, "assistant", "c")
    up = store.add_feedback(m1.id, +1)
    down = store.add_feedback(m2.id, -1, comment="wrong order number")
    store.add_feedback(m3.id, 1)
    assert store.feedback_for(conv.id) == [up, down]
    assert down.comment == "wrong order number"
    with pytest.raises(StorageError, match="rating must be \\+1 or -1, not 5"):
        store.add_feedback(m1.id, 5)
    with pytest.raises(NotFoundError, match="message 777777 does not exist"):
        store.add_feedback(777777, 1)


def test_moderation_events_and_delete_cascade(store: Store) -> None:
    conv = store.create_conversation("support")
    msg = store.append_message(conv.id, "user", "some rude text")
    store.add_feedback(msg.id, -1)
    event = store.record_moderation(
        "support", "input", "lexicon", "flag", {"toxicity": 0.8}, message_id=msg.id, conversation_id=conv.id
    )
    loose = store.record_moderation("support", "output", "detoxify", "block", {"toxicity": 0.99})
    assert (event.action, event.scores, event.message_id) == ("flag", {"toxicity": 0.8}, msg.id)
    assert store.moderation_events("support") == [loose, event]
    assert store.moderation_events(conversation_id=conv.id) == [event]
    assert store.moderation_events(action="block") == [loose]
    with pytest.raises(StorageError, match="action 'shout'"):
        store.record_moderation("support", "input", "lexicon", "shout")
    with pytest.raises(StorageError, match="direction 'sideways'"):
        store.record_moderation("support", "sideways", "lexicon", "allow")
    with pytest.raises(NotFoundError, match="conversation 31337"):
        store.record_moderation("support", "input", "lexicon", "allow", conversation_id=31337)

    store.delete_conversation(conv.id)
    with pytest.raises(NotFoundError):
        store.get_message(msg.id)
    # The safety log outlives the conversation; only its links are cleared.
    kept = store.moderation_events("support")
    assert len(kept) == 2 and kept[1].message_id is None and kept[1].conversation_id is None


def test_model_registry_keeps_one_active_model(store: Store) -> None:
    v1 = store.register_model(
        "support-v1", "support", "/models/v1", base="scratch", preset="nano", params=3_000_000_000,
        metrics={"val_loss": 2.1}, data={"fingerprint": "abc", "history": "tickets.csv", "rows": 100},
    )
    assert v1.status == "candidate" and v1.params == 3_000_000_000 and v1.data["rows"] == 100
    assert store.active_model("support") is None
    store.register_model("support-v2", "support", "/models/v2")
    store.register_model("writer-v1", "writer", "/models/w1", status="active")

    assert store.promote("support-v1").status == "active"
    assert store.promote("support-v2").status == "active"
    statuses = {m.name: m.status for m in store.list_models()}
    assert statuses == {"support-v1": "archived", "support-v2": "active", "writer-v1": "active"}
    assert store.active_model("support").name == "support-v2"  # type: ignore[union-attr]
    assert store.active_model("writer").name == "writer-v1"  # type: ignore[union-attr]
    assert [m.name for m in store.list_models(app="support")] == ["support-v2", "support-v1"]

    # Registering straight as active also archives the previous one.
    store.register_model("support-v3", "support", "/models/v3", status="active")
    assert [m.name for m in store.list_models(app="support", status="active")] == ["support-v3"]
    assert store.promote("support-v3").status == "active"  # promoting the active one is a no-op

    with pytest.raises(StorageError, match="'support-v1' is already registered"):
        store.register_model("support-v1", "support", "/elsewhere")
    # A resumed run re-registers its name: replace=True overwrites the entry in place.
    again = store.register_model("support-v1", "support", "/models/v1b", metrics={"val_loss": 1.5}, replace=True)
    assert (again.id, again.path, again.metrics, again.status) == (v1.id, "/models/v1b", {"val_loss": 1.5}, "candidate")
    again = store.register_model("support-v1", "support", "/models/v1c", status="active", replace=True)
    assert again.status == "active" and store.get_model("support-v3").status == "archived"
    store.promote("support-v3")
    with pytest.raises(NotFoundError, match="model 'nope' is not registered"):
        store.promote("nope")
    with pytest.raises(NotFoundError, match="'nope'"):
        store.get_model("nope")
    assert store.archive_model("support-v3").status == "archived"
    assert store.active_model("support") is None

    # The database itself refuses a second active model for an app.
    store.promote("support-v1")
    with store.engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(text("UPDATE models SET status = 'active' WHERE name = 'support-v2'"))


def test_training_runs(store: Store) -> None:
    run = store.start_run("support", "support-v1", config={"preset": "nano", "lr": 3e-4}, data_fingerprint="abc")
    assert run.status == "running" and run.ended_at is None
    done = store.finish_run(run.id, metrics={"val_loss": 1.9})
    assert done.status == "finished" and done.ended_at is not None and done.ended_at >= done.started_at
    assert done.metrics == {"val_loss": 1.9} and done.config == {"preset": "nano", "lr": 3e-4}
    other = store.start_run("support")
    store.finish_run(other.id, "interrupted", model_name="support-v2")
    assert [r.status for r in store.list_runs("support")] == ["interrupted", "finished"]
    assert store.get_run(other.id).model_name == "support-v2"
    with pytest.raises(StorageError, match="not 'running'"):
        store.finish_run(run.id, "running")
    with pytest.raises(NotFoundError, match="training run 999 does not exist"):
        store.finish_run(999)


def test_documents(store: Store) -> None:
    brief = {"title": "Spring sale", "format": "blog", "keywords": ["sale"]}
    d1 = store.save_document("writer", "Spring sale", "Body text", brief=brief, model_name="writer-v1",
                             template_name="writer/blog.j2", template_version="1")
    d2 = store.save_document("writer", "Second", "More")
    store.save_document("other", "Elsewhere", "x")
    assert store.list_documents("writer") == [d2, d1]
    assert store.get_document(d1.id).brief == brief
    assert len(store.list_documents()) == 3
    with pytest.raises(NotFoundError, match="document 4040 does not exist"):
        store.get_document(4040)
