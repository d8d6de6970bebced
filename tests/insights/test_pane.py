"""The Insights tab of `appkit chat`: the report's numbers for the support app's conversations."""

from __future__ import annotations

from typing import Any

import pytest

from appkit.config import load_settings
from appkit.store import open_store
from appkit.tui.app import ChatApp
from tests.insights.history import conversation
from tests.tui.conftest import wait_for, wait_ready

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_insights_tab_shows_the_periods_numbers_and_follows_new_conversations(tmp_path: Any) -> None:
    settings = load_settings(home=tmp_path / "home")
    with open_store(settings) as store:
        conversation(store, ["where is my order"], rating=1)
        conversation(store, ["agent please"], handoff="asked_for_human")
    app = ChatApp(settings, app="support")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_ready(pilot)
        assert [str(tab.label) for tab in app.query("Tab")][-1] == "Insights F6"
        await pilot.press("f6")
        await wait_for(pilot, lambda: getattr(app.query_one("#insights-pane"), "report", None) is not None,
                       what="the report")
        head = str(app.query_one("#insights-head").render())
        assert "2 conversations" in head and "50% handed over" in head and "1 ratings good" in head
        assert app.query_one("#status").render().plain.startswith(" insights ")

        with open_store(settings) as store:  # a new conversation shows on ctrl+g (and every 30 s)
            conversation(store, ["is my refund done"])
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: "3 conversations" in str(app.query_one("#insights-head").render()),
                       what="the new conversation")


async def test_an_empty_period_is_said_not_raised(tmp_path: Any) -> None:
    app = ChatApp(load_settings(home=tmp_path / "home"), app="support")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_ready(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: "no data" in app.query_one("#status").render().plain, what="the notice")
        assert "conversation" in str(app.query_one("#insights-head").render())
