"""The support pane's stored conversations: the list beside the chat (search, archived ones),
and what a person does to a conversation or a reply (rename, archive or restore, delete,
export, rate).

A mixin of ``SupportPane`` (it uses the pane's store, open conversation and widgets), kept apart
from the chat itself: nothing here calls the bot. Textual message handlers (``@on``) stay on the
pane, which routes them here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.widgets import Input

from appkit.errors import AppkitError
from appkit.tui.export import FORMATS, default_path, export_conversation
from appkit.tui.screens.dialogs import ConfirmDialog, ExportDialog, TextDialog
from appkit.tui.widgets.sidebar import ConversationList, Sidebar

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.store import ConversationRecord, Store
    from appkit.tui.widgets.message import MessageView

LIST_LIMIT = 200  # conversations the list shows (the newest; search finds the others)


class ConversationActions:
    """The conversation list and the pane's ``do_*`` actions on stored conversations and replies
    (bound in ``[tui.bindings]``)."""

    store: Store | None
    conversation: ConversationRecord | None
    settings: Settings
    app_name: str
    # provided by SupportPane (and Textual's Widget)
    app: Any
    notify: Any
    query_one: Any
    _show_title: Any
    _update_prompt: Any
    do_new_conversation: Any

    def reload_list(self) -> None:
        """Show the app's conversations that match the search (active or archived ones) in the list."""
        if self.store is None:
            return
        sidebar = self.query_one(Sidebar)
        try:
            found = self.store.list_conversations(app=self.app_name, search=sidebar.search_text or None,
                                                  limit=LIST_LIMIT, status="archived" if sidebar.archived else None)
        except AppkitError as e:
            self.notify(str(e), severity="error")
            return
        if not sidebar.archived:
            found = [c for c in found if c.status != "archived"]
        sidebar.show(found, self.conversation.id if self.conversation else None)

    def _target(self) -> ConversationRecord | None:
        """The conversation an action applies to: the highlighted one in the list, else the open one."""
        listing = self.query_one(ConversationList)
        if listing.has_focus and listing.highlighted_id is not None and self.store is not None:
            return self.store.get_conversation(listing.highlighted_id)
        return self.conversation

    def do_search(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = True
        self.query_one("#search", Input).focus()

    def do_toggle_sidebar(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = not sidebar.display

    def do_show_archived(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = True
        sidebar.toggle_archived()
        self.notify("Showing archived conversations (ctrl+o restores one)." if sidebar.archived
                    else "Showing active conversations.", timeout=3)


    def do_rename(self) -> None:
        conv = self._target()
        if conv is None or self.store is None:
            self.notify("Send a message first: a new conversation is stored with its first message.")
            return

        def done(title: str | None) -> None:
            if title is None:
                return
            self._apply(conv.id, lambda: self.store.rename(conv.id, title.strip() or None), "Renamed.")

        self.app.push_screen(TextDialog("Rename conversation", value=conv.title or "", placeholder="title"), done)

    def do_archive(self) -> None:
        conv = self._target()
        if conv is None or self.store is None:
            self.notify("No conversation selected.")
            return
        if conv.status == "archived":
            self._apply(conv.id, lambda: self.store.set_status(conv.id, "open"), f"Restored “{conv.title or conv.id}”.")
        else:
            self._apply(conv.id, lambda: self.store.set_status(conv.id, "archived"),
                        f"Archived “{conv.title or conv.id}” (ctrl+l lists archived conversations).")

    def _apply(self, conv_id: int, change: Any, message: str) -> None:
        try:
            record = change()
        except AppkitError as e:
            self.notify(str(e), severity="error")
            return
        if self.conversation is not None and self.conversation.id == conv_id:
            self.conversation = record
            self._show_title()
            self._update_prompt()
        self.reload_list()
        self.notify(message, timeout=3)

    def do_delete(self, conversation_id: int | None = None) -> None:
        if self.store is None:
            return
        conv = self.store.get_conversation(conversation_id) if conversation_id else self._target()
        if conv is None:
            self.notify("No conversation selected.")
            return

        async def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete_conversation(conv.id)
            except AppkitError as e:
                self.notify(str(e), severity="error")
                return
            if self.conversation is not None and self.conversation.id == conv.id:
                await self.do_new_conversation()
            self.reload_list()
            self.notify(f"Deleted conversation {conv.id}.", timeout=3)

        question = (f"Delete “{conv.title or f'untitled #{conv.id}'}” and its {conv.message_count} messages "
                    "(with their ratings)? This cannot be undone.")
        self.app.push_screen(ConfirmDialog(question), done)

    def do_export(self) -> None:
        conv = self.conversation
        if conv is None or self.store is None:
            self.notify("Nothing to export: open or start a conversation first.", severity="warning")
            return
        folder = self.settings.tui.export_dir
        directory = Path(str(folder)).expanduser() if folder else None
        paths = {fmt: str(default_path(conv.id, fmt, directory)) for fmt in FORMATS}

        def done(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            fmt, path = answer
            try:
                written = export_conversation(self.store, conv.id, path, fmt)
            except AppkitError as e:
                self.notify(str(e), severity="error", timeout=10)
                return
            self.notify(f"Exported to {written}", title="Export", timeout=10)

        self.app.push_screen(ExportDialog(conv.id, paths), done)

    def rate(self, view: MessageView, rating: int) -> None:
        """Rate a stored reply good (1) or bad (-1), with an optional comment, as feedback."""
        if view.record is None or self.store is None:
            return
        label = "good" if rating > 0 else "bad"

        def done(comment: str | None) -> None:
            if comment is None:
                return
            try:
                self.store.add_feedback(view.record.id, rating, comment.strip() or None)
            except AppkitError as e:
                self.notify(str(e), severity="error")
                return
            view.set_rating(rating)
            self.notify(f"Rated {label}: saved as feedback.", timeout=3)

        self.app.push_screen(TextDialog(f"Rate this reply {label}", placeholder="comment (optional)",
                                        hint="enter: save the rating · esc: cancel"), done)
