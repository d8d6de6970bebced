"""Pilot tests of everything around the chat: no model, app switching, writer and sentiment, keys, theme."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appkit.errors import ModelError
from appkit.tui.app import ChatApp
from tests.apps.writer_fixtures import writer_corpus, writer_home, writer_settings  # noqa: F401
from tests.tui.conftest import no_policy_opener, wait_for, wait_ready

pytestmark = pytest.mark.anyio


def panel_text(app: ChatApp, pane_id: str) -> str:
    return "\n".join(str(s.render()) for s in app.query_one(f"#{pane_id}").query(".missing-text"))


async def test_no_model_shows_the_train_command(empty_settings: Any) -> None:
    app = ChatApp(empty_settings, app="support")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await wait_ready(pilot)
        await wait_for(pilot, lambda: app.query_one("#support-pane").query(".missing-text"), what="the panel")
        assert not pane.opened.ok and pane.opened.problem == "no_model"
        text = panel_text(app, "support-pane")
        assert "No support model is trained yet" in text
        assert "appkit support train --history tickets.csv" in text and "appkit support demo" in text
        assert app.query_one("#prompt").disabled
        assert "no model trained" in app.query_one("#status").render().plain


async def test_switching_to_tabs_without_a_model(empty_settings: Any) -> None:
    app = ChatApp(empty_settings, app="support")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        # One tab per installed app, by name: F2 sentiment, F3 support, F4 writer.
        assert [str(tab.label) for tab in app.query("Tab")] == ["Sentiment F2", "Support F3", "Writer F4", "Insights F6"]
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.query_one("#writer-pane").opened is not None, what="the writer")
        await pilot.pause()
        text = panel_text(app, "writer-pane")
        assert "writer" in text and "appkit writer train --corpus posts/" in text
        assert app.query_one("#write").disabled
        assert app.query_one("#status").render().plain.startswith(" writer ")
        await pilot.press("f5")  # Write with no writer: a notice, no crash
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.query_one("#sentiment-pane").opened is not None, what="sentiment")
        await pilot.pause()
        assert "appkit sentiment train --data labeled.csv" in panel_text(app, "sentiment-pane")
        await pilot.press("f5")
        await pilot.press("ctrl+g", "ctrl+s", "ctrl+n")  # support-only keys do nothing here
        await pilot.press("f3")
        await pilot.pause()
        assert app.query_one("#apps").active == "support"


@dataclass
class Draft:
    text: str


@dataclass
class FakeWriter:
    """The writer API issue 6 describes: write(title, format, tone, words) -> object with .text."""

    briefs: list[dict[str, Any]] = field(default_factory=list)
    model_name: str = "writer-toy"

    def write(self, **brief: Any) -> Draft:
        self.briefs.append(brief)
        return Draft(f"# {brief['title']}\n\nA {brief['format']} post in a {brief.get('tone', 'plain')} tone.")

    def describe(self) -> dict[str, Any]:
        return {"name": self.model_name, "parameters": 2_500_000, "device": "cpu", "safety": "lexicon"}


@dataclass
class Label:
    label: str
    probabilities: dict[str, float]


class FakeSentiment:
    """The sentiment API issue 6 describes: analyze(texts) -> objects with .label and .probabilities."""

    def analyze(self, texts: list[str]) -> list[Label]:
        out = []
        for t in texts:
            label = "negative" if "bad" in t else "positive"
            out.append(Label(label, {label: 0.9, "negative" if label == "positive" else "positive": 0.1}))
        return out


def fake_opener(writer: FakeWriter) -> Any:
    def open_fake(name: str, **kwargs: Any) -> Any:
        if name == "writer":
            return writer
        if name == "sentiment":
            return FakeSentiment()
        raise ModelError(f"no {name} model is trained yet: run `appkit train-support --history tickets.csv`.")

    return open_fake


async def test_writer_form_and_draft(empty_settings: Any) -> None:
    writer = FakeWriter()
    app = ChatApp(empty_settings, app="writer", opener=fake_opener(writer))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#writer-pane")
        await wait_for(pilot, lambda: pane.opened is not None, what="the writer")
        await pilot.pause()
        assert "writer-toy" in app.query_one("#status").render().plain
        await pilot.press(*"Spring sale")
        app.query_one("#writer-tone").value = "playful"
        await pilot.press("f5")
        await wait_for(pilot, lambda: writer.briefs and not pane.writing, what="the draft")
        await pilot.pause()
        assert writer.briefs == [{"title": "Spring sale", "format": "blog", "tone": "playful", "words": 300}]
        assert "A blog post in a playful tone." in app.query_one("#draft-text").source


async def test_writer_pane_with_the_real_writer_app(writer_settings: Any) -> None:
    """The installed writer app and a nano model trained by `appkit writer train`: draft streamed and stored."""
    from appkit.store import open_store

    def documents() -> list[Any]:
        with open_store(writer_settings) as store:
            return store.list_documents(app="writer")

    app = ChatApp(writer_settings, app="writer", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#writer-pane")
        await wait_for(pilot, lambda: pane.opened is not None, what="the writer")
        await pilot.pause()
        assert pane.opened.ok and "writer-toy" in app.query_one("#status").render().plain
        app.query_one("#writer-words").value = "0"
        await pilot.press(*"Why we ship", "f5")
        await wait_for(pilot, lambda: not pane.writing and app._notifications, what="the refusal")
        assert any("--words 0" in str(n.message) for n in app._notifications) and documents() == []
        app.query_one("#writer-words").value = "60"
        await pilot.press("f5")
        await wait_for(pilot, lambda: not pane.writing and documents(), what="the draft")
        await pilot.pause()
        [doc] = documents()
        source = app.query_one("#draft-text").source
        assert source.startswith("# Why we ship\n\n") and source.strip() == doc.content
        assert doc.brief["words"] == 60 and doc.model_name == "writer-toy"


async def test_sentiment_labels_and_distribution(empty_settings: Any, tmp_path: Path) -> None:
    app = ChatApp(empty_settings, app="sentiment", opener=fake_opener(FakeWriter()))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#sentiment-pane")
        await wait_for(pilot, lambda: pane.opened is not None, what="the classifier")
        await pilot.pause()
        app.query_one("#sentiment-input").text = "great service\nbad delivery\nlove it"
        await pilot.press("f5")
        table = app.query_one("#sentiment-table")
        await wait_for(pilot, lambda: table.row_count == 3, what="the labels")
        assert [table.get_row_at(i)[1] for i in range(3)] == ["positive", "negative", "positive"]
        bar = str(app.query_one("#distribution").render())
        assert "positive 67% (2)" in bar and "negative 33% (1)" in bar
        # A file path instead of text: a CSV's text column.
        data = tmp_path / "reviews.csv"
        data.write_text("id,text\n1,bad bad\n2,fine\n", encoding="utf-8")
        app.query_one("#sentiment-input").text = str(data)
        await pilot.press("f5")
        await wait_for(pilot, lambda: table.row_count == 2, what="the file's labels")
        assert table.get_row_at(0)[3] == "bad bad"


async def test_help_lists_every_binding_and_toml_overrides_keys(appkit_home: Path) -> None:
    from appkit.config import load_settings
    from appkit.tui.bindings import KEYS

    appkit_home.mkdir(parents=True)
    (appkit_home / "appkit.toml").write_text(
        '[tui]\ntheme = "textual-light"\n[tui.bindings]\nexport = "f6"\nbogus = "x"\n', encoding="utf-8")
    app = ChatApp(load_settings(), app="support")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        assert app.theme == "textual-light"
        assert any("unknown binding 'bogus'" in str(n.message) for n in app._notifications)
        await pilot.press("f1")
        await pilot.pause()
        help_text = str(app.screen.query_one("#help-text").render())
        for k in KEYS:
            if k.id not in ("tab_4", "tab_5", "tab_6"):  # three apps: three tabs
                assert k.description in help_text, k.id
        assert "Tab 1: Sentiment" in help_text and "Tab 4" not in help_text
        assert "f6" in help_text and "ctrl+s" not in help_text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+b")
        assert not app.query_one("#sidebar").display
