"""The conversation list: stored conversations of one app, newest first, with search.

Typing a letter while the list has focus starts a search (titles and message text, through
``Store.list_conversations(search=...)``); the list shows either the live conversations or the
archived ones. The sidebar only displays and reports: the chat pane owns the store calls that
change anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from appkit.tui.bindings import CONVERSATIONS, bindings

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from appkit.store import ConversationRecord

STATUS_STYLES = {"open": "$text-muted", "escalated": "bold $text-warning", "closed": "$text-success",
                 "archived": "$text-muted"}
SEARCH_DELAY_S = 0.15  # one query per pause in typing, not one per key


def conversation_label(conv: ConversationRecord) -> Content:
    """Two lines: the title, then the status (escalated stands out) and the message count."""
    title = conv.title or f"untitled #{conv.id}"
    marker = "⚠ " if conv.status == "escalated" else ""
    status = Content.styled(f"{marker}{conv.status}", STATUS_STYLES.get(conv.status, ""))
    count = Content.styled(f" · {conv.message_count} msg", "$text-muted")
    return Content(title).truncate(60, ellipsis=True) + Content("\n") + status + count


class ConversationList(OptionList):
    """The conversations; Delete asks to delete the highlighted one, letters start a search."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(CONVERSATIONS)

    class Delete(Message):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def on_key(self, event: events.Key) -> None:
        # Type-to-search: a printable key sends the user to the search box with that character.
        if event.is_printable and event.character and not event.character.isspace():
            search = self.screen.query_one("#search", Input)
            search.focus()
            search.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

    @property
    def highlighted_id(self) -> int | None:
        option = self.highlighted_option
        return int(option.id) if option is not None and option.id else None

    def action_delete(self) -> None:
        if self.highlighted_id is not None:
            self.post_message(self.Delete(self.highlighted_id))


class Sidebar(Vertical):
    """Search box, list title and the conversation list."""

    class Search(Message):
        """The search text or the archived toggle changed: the owner reloads the list."""

        def __init__(self, text: str, archived: bool) -> None:
            super().__init__()
            self.text = text
            self.archived = archived

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.archived = False
        self._timer = None
        self.conversations: list[ConversationRecord] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search…", id="search", compact=True, select_on_focus=False)
        yield Static(self._title(), id="list-title")
        yield ConversationList(id="conversations")

    def _title(self) -> Content:
        return Content.styled("archived" if self.archived else "conversations", "bold $text-muted")

    @property
    def search_text(self) -> str:
        return self.query_one("#search", Input).value.strip()

    @property
    def list(self) -> ConversationList:
        return self.query_one(ConversationList)

    def show(self, conversations: list[ConversationRecord], current: int | None) -> None:
        """Replace the list, keeping the highlight on ``current`` (or on the previous highlight)."""
        listing = self.list
        keep = listing.highlighted_id if current is None else current
        self.conversations = conversations
        listing.set_options(Option(conversation_label(c), id=str(c.id)) for c in conversations)
        ids = [c.id for c in conversations]
        if keep in ids:
            listing.highlighted = ids.index(keep)
        elif ids:
            listing.highlighted = 0
        shown = "archived" if self.archived else "conversations"
        self.query_one("#list-title", Static).update(
            Content.styled(f"{shown} ({len(ids)})" + (f" matching “{self.search_text}”" if self.search_text else ""),
                           "bold $text-muted"))

    def toggle_archived(self) -> None:
        self.archived = not self.archived
        self.post_message(self.Search(self.search_text, self.archived))

    def clear_search(self) -> bool:
        """Empty the search box; False if it was empty already."""
        search = self.query_one("#search", Input)
        if not search.value:
            return False
        search.value = ""
        return True

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY_S, self._emit_search)

    def _emit_search(self) -> None:
        self._timer = None
        self.post_message(self.Search(self.search_text, self.archived))

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._timer is not None:  # Enter: search now, then move to the results
            self._timer.stop()
            self._emit_search()
        self.list.focus()

    def on_key(self, event: events.Key) -> None:
        # Down from the search box goes into the results.
        if event.key == "down" and self.query_one("#search", Input).has_focus:
            self.list.focus()
            event.stop()
