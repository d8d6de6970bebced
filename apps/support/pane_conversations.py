"""The support pane's conversation management: show archived, rename, archive or restore,
delete and export the conversation in hand.

A mixin of ``SupportPane`` (it uses the pane's store, open conversation, widgets and list), kept
apart from the chat itself: these act on stored conversations and never call the bot. Textual
message handlers (``@on``) stay on the pane, which routes them here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import AppkitError
from appkit.tui.export import FORMATS, default_path, export_conversation
from appkit.tui.screens.dialogs import ConfirmDialog, ExportDialog, TextDialog
from appkit.tui.widgets.sidebar import Sidebar

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.store import ConversationRecord, Store


class ConversationActions:
    """The pane's ``do_*`` actions on stored conversations (bound in ``[tui.bindings]``)."""

    store: Store | None
    conversation: ConversationRecord | None
    settings: Settings
    # provided by SupportPane (and Textual's Widget)
    app: Any
    notify: Any
    query_one: Any
    _target: Any
    _show_title: Any
    _update_prompt: Any
    reload_list: Any
    do_new_conversation: Any

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
