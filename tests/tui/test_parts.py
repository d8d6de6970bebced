"""The UI's plain parts, without an app: bindings, export, batching, sentiment input, status line."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appkit.config import Settings
from appkit.store.records import ConversationRecord, MessageRecord
from appkit.tui.apps_panels import Opened, open_app, problem_text
from appkit.tui.bindings import KEYS, display, help_rows, keymap_from_settings
from appkit.tui.export import conversation_markdown, with_format
from appkit.tui.settings import TuiSettings
from appkit.tui.streaming import Batcher, stream_batched
from appkit.tui.widgets.status import StatusInfo, human_size, status_content
from apps.sentiment.pane import distribution, texts_from_input

NOW = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)


def test_binding_ids_are_unique_and_every_key_is_in_help() -> None:
    ids = [k.id for k in KEYS]
    assert len(ids) == len(set(ids))
    assert {r[3] for r in help_rows({}) if r[3]} == set(ids)
    rows = help_rows({}, tabs=["Sentiment", "Support"])  # only the tabs that are there, named
    assert [r[2] for r in rows if r[3].startswith("tab_")] == ["Tab 1: Sentiment", "Tab 2: Support"]


def test_keymap_from_settings_reports_bad_entries() -> None:
    settings = Settings(home=Path("/tmp/x"), tui=TuiSettings(bindings={
        "new": "ctrl+k", "rate_up": " plus , u ", "nope": "x", "export": " "}))
    keymap, problems = keymap_from_settings(settings)
    assert keymap == {"new": "ctrl+k", "rate_up": "plus,u"}
    assert len(problems) == 2
    assert "unknown binding 'nope'" in problems[0] and "export must be a key" in problems[1]
    assert display("plus,equals_sign") == "+ / ="


def test_markdown_export_keeps_flags_and_drops_failures() -> None:
    conv = ConversationRecord(7, "support", "Broken kettle", "escalated", None, NOW, NOW)
    messages = [
        MessageRecord(1, 7, 1, "user", "It is broken!", "ok", NOW, moderation={"action": "flag"},
                      sentiment={"label": "negative"}),
        MessageRecord(2, 7, 2, "assistant", "", "error", NOW, error="boom"),
        MessageRecord(3, 7, 3, "assistant", "Sorry, I", "stopped", NOW),
    ]
    text = conversation_markdown(conv, messages)
    assert text.startswith("# Broken kettle\n")
    assert "## Customer (safety: flag, sentiment: negative)\n\nIt is broken!" in text
    assert "## Bot (stopped)\n\nSorry, I" in text
    assert "boom" not in text and text.count("## Bot") == 1
    assert with_format("/a/b.md", "jsonl") == "/a/b.jsonl"
    assert with_format("/a/b", "markdown") == "/a/b.md"
    assert with_format("/a/b.txt", "jsonl") == "/a/b.txt"


def test_batcher_joins_fast_pieces_and_passes_slow_ones() -> None:
    now = [0.0]
    batcher = Batcher(interval=0.05, clock=lambda: now[0])
    assert batcher.add("a") == "a"  # the first piece at once
    now[0] = 0.01
    assert batcher.add("b") == ""
    now[0] = 0.02
    assert batcher.add("c") == ""
    now[0] = 0.06
    assert batcher.add("d") == "bcd"
    now[0] = 1.0
    assert batcher.add("e") == "e"  # a slow model: every piece shows as it comes
    shown: list[str] = []
    stream_batched(iter(["x"] * 1000), shown.append)
    assert "".join(shown) == "x" * 1000 and len(shown) < 50


def test_sentiment_input_from_text_and_files(tmp_path: Path) -> None:
    assert texts_from_input(" good \n\n bad ") == ["good", "bad"]
    lines = tmp_path / "t.txt"
    lines.write_text("one\n\ntwo\n", encoding="utf-8")
    assert texts_from_input(str(lines)) == ["one", "two"]
    table = tmp_path / "t.csv"
    table.write_text("id,review\n1,nice\n2,\n3,awful\n", encoding="utf-8")
    assert texts_from_input(str(table)) == ["nice", "awful"]
    bar = distribution(["pos", "pos", "neg", "pos"], width=8)
    assert bar.plain.splitlines()[0] == "█" * 8
    assert "pos 75% (3)" in bar.plain and "neg 25% (1)" in bar.plain


def test_status_line() -> None:
    assert human_size(133_440) == "133K" and human_size(1_234_567) == "1.2M" and human_size(None) == ""
    line = status_content(StatusInfo("support", "ready", "toy", 133_440, "cpu", 41.26, "lexicon")).plain
    assert line == " support  toy · 133K params │ cpu │ 41.3 tok/s │ safety: lexicon (degraded)"
    degraded = status_content(StatusInfo("support", "ready", safety="lexicon")).spans[-1].style
    healthy = status_content(StatusInfo("support", "ready", safety="trained:mine")).spans[-1].style
    assert "warning" in str(degraded) and "success" in str(healthy)
    assert "loading model" in status_content(StatusInfo("support")).plain
    assert "no model trained" in status_content(StatusInfo("writer", "no_model")).plain


def test_open_app_turns_every_failure_into_a_panel(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert open_app("writer", settings=settings, model=None).problem == "no_model"

    def broken(name: str, **_: object) -> object:
        raise RuntimeError("half-built app")

    opened = open_app("writer", settings=settings, model=None, opener=broken)
    assert opened.problem == "failed" and "half-built app" in opened.detail
    text = problem_text(Opened("sentiment", problem="no_model"), note="labeled.csv has a text column").plain
    assert "No sentiment model is trained yet" in text and "appkit sentiment train --data labeled.csv" in text
    assert "labeled.csv has a text column" in text


def test_appkit_help_does_not_import_textual_or_torch() -> None:
    code = ("import sys; from appkit.cli import main; main(['--help']); "
            "bad = [m for m in ('textual', 'torch', 'appkit.tui.app') if m in sys.modules]; "
            "assert not bad, bad; main(['support', 'chat', '--help'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "chat" in out.stdout and "--conversation" in out.stdout


@pytest.mark.parametrize("app", ["nope"])
def test_run_chat_rejects_unknown_apps(app: str, tmp_path: Path) -> None:
    from appkit.errors import ConfigError
    from appkit.tui import run_chat

    with pytest.raises(ConfigError, match="installed: sentiment, support, writer"):
        run_chat(Settings(home=tmp_path), app=app)
