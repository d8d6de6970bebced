"""JSONL export in the OpenAI chat fine-tuning shape, read back line by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appkit.errors import NotFoundError, StorageError
from appkit.store import Store


def _fill(store: Store) -> tuple[int, int, int, int]:
    a = store.create_conversation("support", title="order")
    store.append_message(a.id, "system", "You are the support bot.")
    store.append_message(a.id, "user", "Where is my order? ✈")
    store.append_message(a.id, "assistant", "", status="error", error="generation failed")
    store.append_message(a.id, "assistant", "It ships tomorrow.")
    store.append_message(a.id, "user", "thanks\nbye")
    store.set_status(a.id, "closed")
    b = store.create_conversation("support")
    store.append_message(b.id, "user", "hello")
    store.append_message(b.id, "assistant", "Hi, how can I help?", status="stopped")
    empty = store.create_conversation("support")
    other = store.create_conversation("writer")
    store.append_message(other.id, "user", "write a post")
    return a.id, b.id, empty.id, other.id


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_app_round_trip(store: Store, tmp_path: Path) -> None:
    a, b, _empty, _other = _fill(store)
    out = tmp_path / "nested" / "support.jsonl"
    assert store.export_jsonl("support", out) == 2  # the empty conversation is skipped
    lines = _read(out)
    assert lines == [
        {
            "id": str(a),
            "messages": [
                {"role": "system", "content": "You are the support bot."},
                {"role": "user", "content": "Where is my order? ✈"},
                {"role": "assistant", "content": "It ships tomorrow."},  # the error reply is left out
                {"role": "user", "content": "thanks\nbye"},
            ],
            "app": "support",
            "status": "closed",
        },
        {
            "id": str(b),
            "messages": [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "Hi, how can I help?"},
            ],
            "app": "support",
            "status": "open",
        },
    ]
    assert "✈" in out.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    assert [p.name for p in out.parent.iterdir()] == ["support.jsonl"]  # no temp file left behind


def test_export_ids_in_given_order(store: Store, tmp_path: Path) -> None:
    a, b, _empty, other = _fill(store)
    out = tmp_path / "some.jsonl"
    assert store.export_jsonl([other, a, other], out) == 2
    assert [(x["id"], x["app"]) for x in _read(out)] == [(str(other), "writer"), (str(a), "support")]


def test_failed_export_leaves_existing_file_alone(store: Store, tmp_path: Path) -> None:
    a, *_ = _fill(store)
    out = tmp_path / "keep.jsonl"
    out.write_text("previous export\n")
    with pytest.raises(NotFoundError, match="conversation\\(s\\) 98765 do not exist"):
        store.export_jsonl([a, 98765], out)
    assert out.read_text() == "previous export\n"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot write export to"):
        store.export_jsonl([a], blocker / "x.jsonl")


def test_export_is_readable_as_history(tmp_path: Path) -> None:
    """appkit.data reads the export back as a support history (the point of the shape)."""
    data = pytest.importorskip("appkit.data")
    from appkit.store import open_store

    with open_store(url=f"sqlite:///{tmp_path / 'a.db'}") as store:
        a, b, _, _ = _fill(store)
        store.export_jsonl("support", tmp_path / "history.jsonl")
    conversations = data.read_history(tmp_path / "history.jsonl")
    assert len(conversations) == 2
    first = conversations[0].as_messages()
    assert [m["role"] for m in first if m["role"] != "system"] == ["user", "assistant", "user"]
    assert any(m["content"] == "It ships tomorrow." for m in first)
