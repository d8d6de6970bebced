"""End to end: ``appkit chat`` in a real terminal (tmux), a message typed, the reply read off the screen."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (apt-get install tmux): the end-to-end chat test needs a real terminal")]

ROOT = Path(__file__).resolve().parents[2]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=30).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_screen(session: str, check: Callable[[str], bool], timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = screen(session)
        if check(text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")


def flat(text: str) -> str:
    """The screen's words without the UI's line breaks, borders and padding."""
    return " ".join(w for w in text.replace("│", " ").replace("▏", " ").replace("▎", " ").split())


def test_chat_in_a_real_terminal(settings: Any, appkit_home: Path) -> None:
    from appkit.store import open_store

    session = f"appkit-chat-{uuid.uuid4().hex[:8]}"
    env = {"APPKIT_HOME": str(appkit_home), "APPKIT_DEVICE": "cpu", "PYTHONPATH": str(ROOT),
           "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "appkit", "chat"])
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", "-c", str(ROOT), command)
    try:
        # The screen comes up while the model loads; the status bar names it once loaded.
        wait_screen(session, lambda s: "new conversation" in s, 30, "the chat screen")
        wait_screen(session, lambda s: "toy" in s and "params" in s, 90, "the model to load")
        tmux("send-keys", "-t", session, "-l", "where is my order")
        tmux("send-keys", "-t", session, "Enter")

        def reply() -> Any:
            with open_store(settings) as store:
                convs = store.list_conversations(app="support")
                messages = store.messages(convs[0].id) if convs else []
            done = [m for m in messages if m.role == "assistant"]
            return done[0] if done else None

        deadline = time.monotonic() + 60
        while (stored := reply()) is None:
            assert time.monotonic() < deadline, f"no reply stored; the screen was:\n{screen(session)}"
            time.sleep(0.2)
        assert stored.content
        words = " ".join(stored.content.split()[:4])
        shown = wait_screen(session, lambda s: words in flat(s), 30, f"the reply ({words!r}) on screen")
        assert "where is my order" in shown and "tok/s" in shown
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 20
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "appkit chat did not quit on ctrl+q"
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
