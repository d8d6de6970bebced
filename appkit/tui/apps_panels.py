"""The apps the UI offers, how to open one without crashing, and the panel shown when one can't be.

The UI always offers support, writer and sentiment. An app can be missing (not installed: its
issue has not landed) or have no trained model yet; either way the user gets one panel that says
what is missing and the exact command that fixes it, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Center, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from appkit.config import Settings

Opener = Callable[..., Any]  # appkit.apps.load_app's signature: (name, *, model, settings) -> app


@dataclass(frozen=True)
class AppInfo:
    """What the UI says about one app before it is loaded."""

    name: str
    title: str
    purpose: str
    train: str  # the exact command that trains its model
    train_note: str = ""


CATALOGUE: dict[str, AppInfo] = {
    "support": AppInfo(
        "support", "Support", "Answers customers the way your team does, trained on your past tickets.",
        "appkit train-support --history tickets.csv",
        "or `appkit demo` to train on the sample history shipped with appkit (a few minutes on a CPU).",
    ),
    "writer": AppInfo(
        "writer", "Writer", "Drafts blog posts, social posts, emails and product copy in your brand's voice.",
        "appkit train-writer --corpus posts/", "posts/ holds your own articles (Markdown or text).",
    ),
    "sentiment": AppInfo(
        "sentiment", "Sentiment", "Labels texts (reviews, tickets, posts) with a classifier trained on your labels.",
        "appkit sentiment train --data labeled.csv", "labeled.csv has a text column and a label column.",
    ),
}
APP_NAMES = tuple(CATALOGUE)


@dataclass
class Opened:
    """An opened app, or why it could not be opened (``problem``: missing / no_model / failed)."""

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
        from appkit.apps import available_apps, load_app

        if name not in available_apps():
            return Opened(name, problem="missing")
        opener = load_app
    try:
        return Opened(name, app=opener(name, model=model, settings=settings))
    except ModelError as e:
        return Opened(name, problem="no_model", detail=str(e))
    except AppkitError as e:
        if "unknown app" in str(e):
            return Opened(name, problem="missing")
        return Opened(name, problem="failed", detail=str(e))
    except Exception as e:  # a half-built app must not take the whole UI down
        return Opened(name, problem="failed", detail=f"{type(e).__name__}: {e}")


def problem_text(opened: Opened) -> Content:
    """What the missing-app panel says: the problem, the exact command that fixes it, then details."""
    info = CATALOGUE.get(opened.name) or AppInfo(opened.name, opened.name, "", f"appkit train-{opened.name}")
    if opened.problem == "missing":
        head, todo = f"The {info.name} app is not installed yet.", "Once it is, train its model with:"
    elif opened.problem == "no_model":
        head, todo = f"No {info.name} model is trained yet.", "Train one with:"
    else:
        head, todo = f"The {info.name} app could not be opened.", "If its model is missing or broken, train it with:"
    lines = [Content.styled(head, "bold"), Content.styled(info.purpose, "$text-muted"), Content(""),
             Content(todo), Content.styled(f"  {info.train}", "bold $text-accent")]
    if info.train_note:
        lines.append(Content.styled(info.train_note, "$text-muted"))
    # The registry's own message adds something only when it is not the plain "no model yet".
    if opened.detail and not opened.detail.lower().startswith(f"no {info.name} model is trained yet"):
        lines += [Content(""), Content.styled(opened.detail, "$text-warning")]
    return Content("\n").join(lines)


class MissingPanel(VerticalScroll):
    """Says which app or model is missing and how to get it; 'Check again' re-tries the load."""

    def __init__(self, opened: Opened, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="missing-panel")
        self.opened = opened

    def compose(self) -> ComposeResult:
        yield Static(problem_text(self.opened), classes="missing-text")
        with Center():
            yield Button("Check again", id="retry", compact=True)
