"""Pilot tests of the support chat against the tiny model trained in the test session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appkit.tui.app import ChatApp
from appkit.tui.widgets.message import MessageView
from tests.tui.conftest import no_policy_opener, send, slow_opener, wait_for, wait_ready

pytestmark = pytest.mark.anyio


def stored(settings: Any, conversation_id: int) -> list[Any]:
    from appkit.store import open_store

    with open_store(settings) as store:
        return store.messages(conversation_id)


async def test_usable_before_the_model_has_loaded(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#support-pane")
        # The screen is there and takes input while the model loads in its worker.
        assert "loading model" in app.query_one("#status").render().plain or pane.opened is not None
        assert not app.query_one("#prompt").disabled
        await wait_ready(pilot)
        assert pane.bot is not None
        status = app.query_one("#status").render().plain
        assert "toy" in status and "cpu" in status and "safety: off" in status


async def test_send_streams_the_reply_and_stores_it(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        pane = await send(pilot, "where is my order")
        conv = pane.conversation
        assert conv is not None and conv.title == "where is my order"
        messages = stored(settings, conv.id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[0].content == "where is my order"
        reply = messages[1]
        assert reply.status == "ok" and reply.content
        views = list(app.query(MessageView))
        assert [v.role for v in views] == ["user", "assistant"]
        assert views[1].text == reply.content and views[1].record.id == reply.id
        assert "tok/s" in app.query_one("#status").render().plain
        # The new conversation is at the top of the list.
        assert app.query_one("#conversations").highlighted_id == conv.id


async def test_message_typed_while_loading_is_sent_when_ready(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#support-pane")
        await pilot.press(*"reset my password", "enter")
        await wait_for(pilot, lambda: pane.conversation is not None and not pane.generating
                       and pane._pending is None, what="the queued message to be answered")
        await pilot.pause()
        assert [m.role for m in stored(settings, pane.conversation.id)] == ["user", "assistant"]


async def test_esc_stops_the_reply_and_keeps_it_as_stopped(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=slow_opener(0.15))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await wait_ready(pilot)
        await pilot.press(*"where is my order", "enter")
        reply = None

        def some_text() -> bool:
            nonlocal reply
            views = list(app.query(MessageView))
            reply = views[-1] if views and views[-1].role == "assistant" else None
            return reply is not None and bool(reply.text)

        await wait_for(pilot, some_text, what="the first streamed piece")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not pane.generating, what="the stop")
        await pilot.pause()
        last = stored(settings, pane.conversation.id)[-1]
        assert last.role == "assistant" and last.status == "stopped"
        assert reply.record is not None and reply.record.status == "stopped"
        assert "stopped" in reply.header().plain
        assert app.query_one("#prompt").has_focus


async def test_regenerate_replaces_the_last_reply(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        pane = await send(pilot, "I want a refund")
        first = stored(settings, pane.conversation.id)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: not pane.generating and len(stored(settings, pane.conversation.id)) == 4,
                       what="the new reply")
        await pilot.pause()
        messages = stored(settings, pane.conversation.id)
        # The replaced turn is kept for audit but marked so history and export leave it out.
        assert [m.status for m in messages[:2]] == ["error", "error"]
        assert [(m.role, m.status) for m in messages[2:]] == [("user", "ok"), ("assistant", "ok")]
        assert messages[2].content == first[0].content
        shown = [v.record.id for v in app.query(MessageView)]
        assert shown == [messages[2].id, messages[3].id]
        bot_history = pane.bot.history(pane.conversation.id)
        assert [m["role"] for m in bot_history] == ["user", "assistant"]


async def test_copy_and_rate_a_reply(settings: Any) -> None:
    from appkit.store import open_store

    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        pane = await send(pilot, "where is my order")
        await pilot.press("up")  # from the prompt to the last message
        reply = app.focused
        assert isinstance(reply, MessageView) and reply.role == "assistant"
        await pilot.press("c")
        assert app.clipboard == reply.text
        await pilot.press("minus")
        await pilot.pause()
        await pilot.press(*"wrong answer", "enter")
        await pilot.pause()
        assert "rated -" in reply.header().plain
        with open_store(settings) as store:
            feedback = store.feedback_for(pane.conversation.id)
        assert [(f.message_id, f.rating, f.comment) for f in feedback] == [(reply.record.id, -1, "wrong answer")]
        # + with no comment: the rating is stored with comment None; Esc cancels.
        reply.focus()
        await pilot.press("plus")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        reply.focus()
        await pilot.press("plus")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        with open_store(settings) as store:
            feedback = store.feedback_for(pane.conversation.id)
        assert [(f.rating, f.comment) for f in feedback] == [(-1, "wrong answer"), (1, None)]


async def test_search_over_titles_and_message_text(settings: Any, fixed_conversations: dict[str, int]) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        listing = app.query_one("#conversations")
        assert listing.option_count == 3
        # Newest first.
        ids = [int(listing.get_option_at_index(i).id) for i in range(3)]
        assert ids == [fixed_conversations["password"], fixed_conversations["order"], fixed_conversations["escalated"]]
        await pilot.press("ctrl+f", *"kettle")
        await wait_for(pilot, lambda: listing.option_count == 1, what="search by title")
        assert listing.get_option_at_index(0).id == str(fixed_conversations["escalated"])
        # Message text too: "sign-in" is only in a reply.
        search = app.query_one("#search")
        search.value = ""
        await pilot.press(*"sign-in")
        await wait_for(pilot, lambda: listing.option_count == 1
                       and listing.get_option_at_index(0).id == str(fixed_conversations["password"]),
                       what="search by message text")
        # Type-to-search from the list itself, and Esc clears the search.
        await pilot.press("escape")
        await wait_for(pilot, lambda: listing.option_count == 3, what="the cleared search")
        listing.focus()
        await pilot.press(*"order")
        assert search.has_focus and search.value == "order"
        await wait_for(pilot, lambda: listing.option_count == 1, what="type-to-search")
        await pilot.press("enter")  # search now and go to the results
        await pilot.press("enter")  # open the highlighted conversation
        await wait_for(pilot, lambda: app.query_one("#support-pane").conversation is not None, what="open")
        assert app.query_one("#support-pane").conversation.id == fixed_conversations["order"]
        assert [v.role for v in app.query(MessageView)] == ["user", "assistant"]


async def test_archive_restore_rename_delete(settings: Any, fixed_conversations: dict[str, int]) -> None:
    from appkit.errors import NotFoundError
    from appkit.store import open_store

    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await wait_ready(pilot)
        listing = app.query_one("#conversations")
        order = fixed_conversations["order"]
        await pane.open_conversation(order)
        await pilot.press("ctrl+o")  # archive the open conversation
        await wait_for(pilot, lambda: listing.option_count == 2, what="archived one to leave the list")
        with open_store(settings) as store:
            assert store.get_conversation(order).status == "archived"
        assert app.query_one("#prompt").disabled  # an archived conversation takes no messages
        await pilot.press("ctrl+l")  # the archived list
        await wait_for(pilot, lambda: listing.option_count == 1, what="the archived list")
        listing.focus()
        await pilot.press("ctrl+o")  # restore the highlighted one
        await wait_for(pilot, lambda: listing.option_count == 0, what="restore")
        with open_store(settings) as store:
            assert store.get_conversation(order).status == "open"
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: listing.option_count == 3, what="the active list")
        assert not app.query_one("#prompt").disabled

        await pilot.press("ctrl+r")
        await pilot.pause()
        rename = app.screen.query_one("#answer")
        rename.value = ""
        await pilot.press(*"Order 1234 late", "enter")
        await pilot.pause()
        with open_store(settings) as store:
            assert store.get_conversation(order).title == "Order 1234 late"
        assert "Order 1234 late" in str(app.query_one("#chat-title").render())

        # Delete asks first; "n" keeps it, "y" deletes.
        listing.focus()
        listing.highlighted = [int(listing.get_option_at_index(i).id) for i in range(3)].index(order)
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        with open_store(settings) as store:
            store.get_conversation(order)
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: listing.option_count == 2, what="the deletion")
        with open_store(settings) as store, pytest.raises(NotFoundError):
            store.get_conversation(order)
        assert pane.conversation is None  # it was open: the chat is back to a new conversation


async def test_export_markdown_and_jsonl(settings: Any, fixed_conversations: dict[str, int], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from appkit.data import read_history

    monkeypatch.chdir(tmp_path)  # the default export path is in the current directory

    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await wait_ready(pilot)
        await pane.open_conversation(fixed_conversations["escalated"])
        md_path = tmp_path / "out" / "kettle.md"
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#path").value = str(md_path)
        await pilot.press("enter")
        await pilot.pause()
        text = md_path.read_text(encoding="utf-8")
        assert text.startswith("# Refund for a broken kettle")
        assert "## Customer (safety: flag)" in text and "## Bot (stopped)" in text and "**5 days**" in text

        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#jsonl").value = True  # the format switch also switches the extension
        await pilot.pause()
        path = dialog.query_one("#path").value
        assert path == str(tmp_path / f"conversation-{fixed_conversations['escalated']}.jsonl")
        await pilot.press("enter")
        await pilot.pause()
        assert any(f"Exported to {path}" in str(n.message) for n in app._notifications)
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["messages"][0]["role"] == "user"
        conversations = read_history(path)
        assert len(conversations) == 1


async def test_quitting_during_a_reply_keeps_it_as_stopped(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=slow_opener(0.15))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await wait_ready(pilot)
        await pilot.press(*"where is my order", "enter")
        await wait_for(pilot, lambda: pane.generating and pane._turn is not None, what="the reply to start")
        conv_id = pane.conversation.id
        await pilot.press("ctrl+q")
    # The app is gone (no hang on the generating thread) and the partial reply was stored.
    last = stored(settings, conv_id)[-1]
    assert last.role == "assistant" and last.status == "stopped"


async def test_command_palette_offers_the_actions(settings: Any) -> None:
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export (ctrl+s)" in titles and "Regenerate (ctrl+g)" in titles


async def test_the_source_of_a_grounded_reply_is_shown_on_request(appkit_home: Path, support_model_dir: Path) -> None:
    from appkit.config import load_settings
    from appkit.store import open_store
    from appkit.tui.screens.dialogs import InfoDialog
    from tests.conftest import INTENTS

    settings = load_settings()
    with open_store(settings) as store:
        store.register_model("toy-support", "support", str(support_model_dir), status="active", replace=True)
    app = ChatApp(settings, app="support", opener=no_policy_opener)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_ready(pilot)
        await send(pilot, "my parcel has not come yet")
        reply = list(app.query(MessageView))[-1]
        assert reply.text == INTENTS["order"][1] and "past case" in reply.header().plain
        await pilot.press("up")  # from the prompt to the last message
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, InfoDialog), what="the source dialog")
        body = str(app.screen.query_one("#info-body").render())
        assert "mode: grounded" in body and "a past reply, from conversation" in body
        assert "the customer there wrote:" in body and "candidates weighed" in body
        await pilot.press("escape")
        assert not isinstance(app.screen, InfoDialog)
