"""SVG snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic by construction: the model has finished loading before the shot, conversations
come from the database with fixed text (no generated reply, no dates on screen), the cursor does
not blink and the safety backend is pinned to "off". Update after an intended change with
``python -m pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

from typing import Any

import pytest

from appkit.tui.app import ChatApp
from tests.tui.conftest import no_policy_opener, wait_for, wait_ready
from tests.tui.test_apps import FakeWriter, fake_opener

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def steady(pilot: Any) -> None:
    """No blinking cursors in a snapshot."""
    from textual.widgets import Input, TextArea

    for widget in pilot.app.query("Input, TextArea"):
        if isinstance(widget, (Input, TextArea)):
            widget.cursor_blink = False
        if isinstance(widget, TextArea):
            # TextArea caches rendered lines under a key that ignores whether the cursor is drawn, so a
            # line cached in a blink's "off" phase kept its hidden cursor: the snapshot depended on timing.
            widget._line_cache.clear()
            widget.refresh()


async def support_ready(pilot: Any) -> None:
    await wait_ready(pilot)
    await pilot.pause()
    steady(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_new_conversation(snap_compare: Any, settings: Any, fixed_conversations: dict[str, int],
                          size: tuple[int, int]) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    assert snap_compare(app, terminal_size=size, run_before=support_ready)


@pytest.mark.parametrize("size", SIZES)
def test_stored_conversation_with_flags(snap_compare: Any, settings: Any, fixed_conversations: dict[str, int],
                                        size: tuple[int, int]) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener, conversation=fixed_conversations["escalated"])

    async def opened(pilot: Any) -> None:
        await support_ready(pilot)
        await wait_for(pilot, lambda: pilot.app.query_one("#support-pane").conversation is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=opened)


def test_stored_conversation_light_theme(snap_compare: Any, settings: Any,
                                         fixed_conversations: dict[str, int]) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener, conversation=fixed_conversations["order"])

    async def light(pilot: Any) -> None:
        await support_ready(pilot)
        await wait_for(pilot, lambda: pilot.app.query_one("#support-pane").conversation is not None)
        await pilot.press("ctrl+t")

    assert snap_compare(app, terminal_size=(80, 24), run_before=light)


@pytest.mark.parametrize("size", SIZES)
def test_no_model(snap_compare: Any, empty_settings: Any, size: tuple[int, int]) -> None:
    app = ChatApp(empty_settings, app="support")
    assert snap_compare(app, terminal_size=size, run_before=support_ready)


def test_help_screen(snap_compare: Any, empty_settings: Any) -> None:
    app = ChatApp(empty_settings, app="support")
    assert snap_compare(app, terminal_size=(80, 24), press=["f1"], run_before=support_ready)


@pytest.mark.parametrize("size", SIZES)
def test_sentiment_results(snap_compare: Any, empty_settings: Any, size: tuple[int, int]) -> None:
    app = ChatApp(empty_settings, app="sentiment", opener=fake_opener(FakeWriter()))

    async def analyzed(pilot: Any) -> None:
        pane = pilot.app.query_one("#sentiment-pane")
        await wait_for(pilot, lambda: pane.opened is not None)
        pilot.app.query_one("#sentiment-input").text = "great service\nbad delivery\nlove it\nbad bad bad"
        await pilot.press("f5")
        await wait_for(pilot, lambda: pilot.app.query_one("#sentiment-table").row_count == 4)
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=analyzed)


def test_writer_draft(snap_compare: Any, empty_settings: Any) -> None:
    app = ChatApp(empty_settings, app="writer", opener=fake_opener(FakeWriter()))

    async def drafted(pilot: Any) -> None:
        pane = pilot.app.query_one("#writer-pane")
        await wait_for(pilot, lambda: pane.opened is not None)
        pilot.app.query_one("#writer-title").value = "Spring sale"
        pilot.app.query_one("#writer-tone").value = "playful"
        await pilot.press("f5")
        await wait_for(pilot, lambda: not pane.writing and pilot.app.query("#draft-text"))
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=drafted)
