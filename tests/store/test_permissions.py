"""Customers' conversations are the owner's alone: a private home, database and exports."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from appkit.cli import main
from appkit.config import load_settings
from appkit.store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask (022), under which a plain open() makes files readable by everyone."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _a_conversation() -> int:
    with open_store(load_settings()) as store:
        conv = store.create_conversation("support", title="order 1234")
        store.append_message(conv.id, "user", "my card 4111 was charged twice")
        return conv.id


def test_a_new_home_and_its_database_are_private(usual_umask, appkit_home):
    _a_conversation()
    assert mode(appkit_home) == 0o700
    database = appkit_home / "appkit.db"
    assert mode(database) == 0o600
    for companion in (appkit_home / "appkit.db-wal", appkit_home / "appkit.db-shm"):
        if companion.exists():  # SQLite's WAL files while a connection is open
            assert mode(companion) == 0o600


def test_exports_are_private_new_or_replaced(usual_umask, appkit_home, tmp_path, capsys):
    conversation = _a_conversation()
    new = tmp_path / "new.jsonl"
    assert main(["conversations", "export", "--app", "support", "-o", str(new)]) == 0
    assert mode(new) == 0o600 and "charged twice" in new.read_text()

    shared = tmp_path / "was-shared.jsonl"
    shared.write_text("")
    shared.chmod(0o644)
    assert main(["conversations", "export", "--id", str(conversation), "-o", str(shared)]) == 0
    assert mode(shared) == 0o600 and "charged twice" in shared.read_text()


def test_a_conversation_saved_from_the_chat_ui_is_private(usual_umask, appkit_home, tmp_path):
    from appkit.tui.export import export_conversation

    conversation = _a_conversation()
    with open_store(load_settings()) as store:
        for fmt in ("markdown", "jsonl"):
            path = export_conversation(store, conversation, tmp_path / f"chat.{fmt}", fmt)
            assert mode(path) == 0o600 and "charged twice" in path.read_text()


def test_models_stay_readable_by_the_team(usual_umask, tmp_path):
    from appkit.files import write_json_atomic

    write_json_atomic(tmp_path / "appkit.json", {"a": 1})  # how model metadata is written
    assert mode(tmp_path / "appkit.json") == 0o644
