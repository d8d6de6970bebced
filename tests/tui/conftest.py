"""Fixtures of the chat UI tests: a home with the tiny model active, fixed conversations, helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

# Greedy and short: replies are deterministic and quick on a CPU.
TEST_TOML = """
[tui]
temperature = 0
max_tokens = 40
"""


@pytest.fixture
def settings(appkit_home: Path, tiny_model_dir: Path) -> Any:
    """Settings of a fresh home where the tiny model is the active support model."""
    from appkit.config import load_settings
    from appkit.store import open_store

    appkit_home.mkdir(parents=True, exist_ok=True)
    (appkit_home / "appkit.toml").write_text(TEST_TOML, encoding="utf-8")
    settings = load_settings()
    with open_store(settings) as store:
        store.register_model("toy", "support", str(tiny_model_dir), status="active", replace=True)
    return settings


@pytest.fixture
def empty_settings(appkit_home: Path) -> Any:
    """Settings of a fresh home with no model at all."""
    from appkit.config import load_settings

    return load_settings()


def no_policy_opener(name: str, **kwargs: Any) -> Any:
    """load_app without a safety policy: the status bar says "safety: off" whatever is installed."""
    from appkit.apps import load_app

    return load_app(name, policy=None, **kwargs)


class SlowStream:
    """Wraps an engine stream so a test can press Esc while the reply is still coming."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.stats = inner.stats
        self.cancelled = False

    def __iter__(self) -> Iterator[str]:
        for piece in self.inner:
            if self.cancelled:
                break
            time.sleep(self.delay)
            yield piece

    def cancel(self) -> None:
        self.cancelled = True
        self.inner.cancel()


def slow_opener(delay: float = 0.1) -> Callable[..., Any]:
    """An opener whose bot's engine yields one piece every ``delay`` seconds."""

    def open_slow(name: str, **kwargs: Any) -> Any:
        bot = no_policy_opener(name, **kwargs)
        fast = bot.engine.stream
        bot.engine.stream = lambda *a, **k: SlowStream(fast(*a, **k), delay)
        return bot

    return open_slow


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> None:
    """Let the app run until ``condition()`` is true (model loads and replies take a moment)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


async def wait_ready(pilot: Any) -> Any:
    """The support pane once its model has loaded (or failed to)."""
    pane = pilot.app.query_one("#support-pane")
    await wait_for(pilot, lambda: pane.opened is not None and pane.store is not None, what="the model to load")
    await pilot.pause()
    return pane


async def send(pilot: Any, text: str) -> Any:
    """Type ``text`` into the prompt, press Enter and wait for the reply to finish."""
    from appkit.tui.widgets.message import MessageView

    pane = pilot.app.query_one("#support-pane")
    pane.query_one("#prompt").focus()
    before = len(pane.query(MessageView))

    def answered() -> bool:
        views = list(pane.query(MessageView))
        return (not pane.generating and len(views) >= before + 2 and views[-1].role == "assistant"
                and not views[-1].streaming)

    await pilot.press(*text, "enter")
    await wait_for(pilot, answered, what="the reply")
    await pilot.pause()
    return pane


FIXED_TIME = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)


def add_fixed_conversations(settings: Any) -> dict[str, int]:
    """Three stored conversations with fixed text and flags, for snapshots and list tests."""
    from appkit.store import open_store

    ids: dict[str, int] = {}
    with open_store(settings) as store:
        c = store.create_conversation("support", title="Refund for a broken kettle")
        store.append_message(c.id, "user", "My kettle arrived broken, I want a refund.",
                             sentiment={"label": "negative", "score": 0.91})
        store.append_message(c.id, "assistant", "I am sorry about that. I have started your refund; "
                             "the money is back on your card within **5 days**.", model_name="toy")
        store.append_message(c.id, "user", "This is the third time, you people are useless!",
                             moderation={"action": "flag", "backend": "lexicon", "scores": {"insult": 0.8}})
        store.append_message(c.id, "assistant", "I understand your frustration. Let me", model_name="toy",
                             status="stopped")
        store.set_status(c.id, "escalated")
        ids["escalated"] = c.id
        c = store.create_conversation("support", title="Where is my order?")
        store.append_message(c.id, "user", "Where is my order #1234?")
        store.append_message(c.id, "assistant", "Your order is on its way and should arrive within 3 business days.",
                             model_name="toy")
        ids["order"] = c.id
        c = store.create_conversation("support", title="Password reset")
        store.append_message(c.id, "user", "I forgot my password")
        store.append_message(c.id, "assistant", "Use the *Forgot password* link on the sign-in page.",
                             model_name="toy")
        ids["password"] = c.id
    return ids


@pytest.fixture
def fixed_conversations(settings: Any) -> dict[str, int]:
    return add_fixed_conversations(settings)


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio (Textual's loop), through anyio's pytest plugin."""
    return "asyncio"
