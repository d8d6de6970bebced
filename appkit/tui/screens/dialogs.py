"""Small modal dialogs: confirm, ask for a line of text, choose an export format and path.

Each returns its answer through ``dismiss`` (None when cancelled with Esc), so callers use
``push_screen(dialog, callback)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from appkit.tui.export import with_format

if TYPE_CHECKING:
    from textual.app import ComposeResult

CANCEL: list[BindingType] = [Binding("escape", "cancel", "Cancel", show=False)]


class ConfirmDialog(ModalScreen[bool]):
    """Yes / no; Enter or y confirms, Esc or n cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [*CANCEL, Binding("y", "confirm", show=False),
                                             Binding("n", "cancel", show=False)]

    def __init__(self, question: str, *, yes: str = "Delete") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes", compact=True)
                yield Button("Cancel (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class TextDialog(ModalScreen[str | None]):
    """One line of text (a title, a comment); Enter accepts, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = CANCEL

    def __init__(self, title: str, *, value: str = "", placeholder: str = "", hint: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Static(self.hint or "enter: ok · esc: cancel", classes="dialog-hint")

    @on(Input.Submitted, "#answer")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class InfoDialog(ModalScreen[None]):
    """Text to read (e.g. where a reply came from); Esc or Enter closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [*CANCEL, Binding("enter", "cancel", "Close", show=False)]

    def __init__(self, title: str, body: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, id="info-body", markup=False)
            yield Static("esc: close", classes="dialog-hint")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportDialog(ModalScreen[tuple[str, str] | None]):
    """Markdown or JSONL, and the path; returns (format, path)."""

    BINDINGS: ClassVar[list[BindingType]] = CANCEL

    def __init__(self, conversation_id: int, paths: dict[str, str]) -> None:
        super().__init__(classes="dialog")
        self.conversation_id = conversation_id
        self.paths = paths  # default path per format

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(f"Export conversation {self.conversation_id}", classes="dialog-title")
            with RadioSet(id="format"):
                yield RadioButton("Markdown (to read and share)", value=True, id="markdown")
                yield RadioButton("JSONL (training data: appkit support train --history FILE)", id="jsonl")
            yield Input(self.paths["markdown"], id="path")
            yield Static("enter: export · esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @property
    def format(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.id if pressed is not None and pressed.id else "markdown"

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        path = self.query_one("#path", Input)
        path.value = with_format(path.value, self.format) if path.value else self.paths[self.format]

    @on(Input.Submitted, "#path")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss((self.format, event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
