"""What the UI needs of an app's pane, how a pane opens its app without crashing, and the panel
shown when it can't.

Each installed app brings its own pane (``App.pane``; the tabs come from the registry). A pane
opens its app in a worker thread with ``open_app``; when the app has no trained model yet, or
fails to load, the pane shows one ``MissingPanel`` that says what is missing and the exact
command that fixes it (the app's ``train_hint``), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import ComposeResult
from textual.containers import Center, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Static

from appkit.apps import Opener

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.tui.widgets.status import StatusInfo


class AppPane(Protocol):
    """What the UI calls on an app's pane (a Textual widget with id ``<app>-pane``).

    Key bindings reach the active pane as ``do_<action>()`` methods (``do_new_conversation``,
    ``do_run``, ``do_export`` ...): a pane has those that mean something for it, and the
    footer greys out the rest.
    """

    app_name: str
    status: StatusInfo  # what the status bar shows while the pane's tab is active

    def activate(self) -> None:
        """The tab was shown (e.g. load the model the first time)."""

    def focus_default(self) -> None:
        """Focus the widget a user types into first."""

    def close(self) -> Any:
        """Release the model and the database; may be a coroutine."""


@dataclass
class Opened:
    """An opened app, or why it could not be opened (``problem``: no_model or failed)."""

    name: str
    app: Any = None
    problem: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.app is not None


def open_app(name: str, *, settings: Settings, model: str | None, opener: Opener | None = None) -> Opened:
    """Load app ``name`` (slow: call it from a worker thread); never raises for a user's problem."""
    from appkit.errors import AppkitError, ModelError

    if opener is None:
        from appkit.apps import load_app

        opener = load_app
    try:
        return Opened(name, app=opener(name, model=model, settings=settings))
    except ModelError as e:
        return Opened(name, problem="no_model", detail=str(e))
    except AppkitError as e:
        return Opened(name, problem="failed", detail=str(e))
    except Exception as e:  # a half-built app must not take the whole UI down
        return Opened(name, problem="failed", detail=f"{type(e).__name__}: {e}")


def problem_text(opened: Opened, note: str = "") -> Content:
    """What the panel says: the problem, the app's training command (and ``note``), then details."""
    from appkit.apps import get_app

    app = get_app(opened.name)
    if opened.problem == "no_model":
        head, todo = f"No {app.name} model is trained yet.", "Train one with:"
    else:
        head, todo = f"The {app.name} app could not be opened.", "If its model is missing or broken, train it with:"
    lines = [Content.styled(head, "bold"), Content.styled(app.description, "$text-muted"), Content(""),
             Content(todo), Content.styled(f"  {app.train_hint}", "bold $text-accent")]
    if note:
        lines.append(Content.styled(note, "$text-muted"))
    # The registry's own message adds something only when it is not the plain "no model yet".
    if opened.detail and not opened.detail.lower().startswith(f"no {app.name} model is trained yet"):
        lines += [Content(""), Content.styled(opened.detail, "$text-warning")]
    return Content("\n").join(lines)


class MissingPanel(VerticalScroll):
    """Says which model is missing and how to get it; 'Check again' re-tries the load."""

    def __init__(self, opened: Opened, *, note: str = "", id: str | None = None) -> None:
        super().__init__(id=id, classes="missing-panel")
        self.opened = opened
        self.note = note

    def compose(self) -> ComposeResult:
        yield Static(problem_text(self.opened, self.note), classes="missing-text")
        with Center():
            yield Button("Check again", id="retry", compact=True)
