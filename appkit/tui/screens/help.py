"""The help screen: every key binding (with appkit.toml overrides applied) and where it works."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from appkit.tui.bindings import help_rows

if TYPE_CHECKING:
    from textual.app import ComposeResult


def help_content(keymap: dict[str, str], tabs: Sequence[str] = ()) -> Content:
    """The bindings grouped by where they work, as aligned columns (``tabs``: the tabs' titles)."""
    rows = help_rows(keymap, tabs)
    width = max(len(keys) for _, keys, _, _ in rows) + 2
    lines: list[Content] = []
    scope = None
    for where, keys, description, _id in rows:
        if where != scope:
            scope = where
            lines += [Content(""), Content.styled(f"{where}", "bold $text-accent")]
        lines.append(Content.styled(f"  {keys:<{width}}", "bold") + Content(description))
    lines += [
        Content(""),
        Content.styled("Change a key in appkit.toml (in APPKIT_HOME or the current directory):", "$text-muted"),
        Content.styled('  [tui.bindings]\n  export = "f6"', "$text-muted"),
        Content.styled('Names to use are the ids: ' + ", ".join(r[3] for r in rows if r[3]), "$text-muted"),
    ]
    return Content("\n").join(lines[1:])


class HelpScreen(ModalScreen[None]):
    """Esc, q or F1 closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1", "close", "Close", show=False)]

    def __init__(self, keymap: dict[str, str], tabs: Sequence[str] = ()) -> None:
        super().__init__(classes="dialog")
        self.keymap = keymap
        self.tabs = tabs

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog-box") as box:
            box.border_title = "appkit chat: keys"
            box.border_subtitle = "esc: close"
            yield Static(help_content(self.keymap, self.tabs), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_close(self) -> None:
        self.dismiss(None)
