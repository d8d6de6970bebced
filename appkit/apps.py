"""The app contract and the registry of apps: first-party and users' own, found through entry points.

An app is one object published under the ``appkit.apps`` entry-point group:

    [project.entry-points."appkit.apps"]
    notes = "acme_notes.app:APP"

and it declares every part appkit builds around it (``App`` below): its name and description,
its ``appkit.toml`` table as a dataclass, its training entry and evaluation, its commands
(``appkit NAME train|eval|...``), its tab in the terminal UI, and the object that does its work.
The CLI, the TUI and the settings loader find apps only here, so appkit itself names no app and
a user's app plugs in exactly as the first-party ones do (apps/support, apps/writer,
apps/sentiment register through this same entry point; simonw/llm's plugin contract, with its
own models registered as a default plugin, is the model). Loading the registry imports the
apps' small descriptor modules only; models, torch and Textual load when an app is used.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from appkit.errors import ConfigError

if TYPE_CHECKING:
    import typer
    from textual.widget import Widget

    from appkit.config import Settings
    from appkit.eval import EvalTable

GROUP = "appkit.apps"
NAME = re.compile(r"^[a-z][a-z0-9-]*$")
Progress = Callable[[str, int, int], None]  # (what, done, total)


@runtime_checkable
class App(Protocol):
    """Everything an app declares to appkit. Every part is required."""

    name: str
    """Lower-case, one word: the command group ``appkit NAME``, the TUI tab, the ``[NAME]`` table, the models' app."""
    title: str
    """The TUI tab's label, e.g. "Support"."""
    description: str
    """One line for ``appkit --help`` and the TUI."""
    train_hint: str
    """The exact command that trains the app's model, shown wherever that model is missing."""
    settings_type: type[Any] | None
    """A frozen dataclass of its ``[NAME]`` table in appkit.toml (None: it reads none)."""
    aliases: Mapping[str, str]
    """Top-level commands kept for people who type them, to commands of the group: {"train-support": "train"}."""

    def commands(self) -> typer.Typer:
        """The ``appkit NAME ...`` commands: at least ``train`` and ``eval``, then the app's own."""

    def train(self, data: str | Path | Sequence[str | Path], *, settings: Settings, name: str | None = None,
              **options: Any) -> Any:
        """Train a model on ``data`` and make it the app's active model; returns what was trained."""

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings,
                 progress: Progress | None = None, **options: Any) -> EvalTable:
        """Score ``models`` (None: the active one) on held-out ``data``."""

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        """A ready-to-use instance of the app (loads its model); ``close()`` releases it."""

    def pane(self, *, settings: Settings, model: str | None = None, opener: Opener | None = None,
             id: str | None = None, **options: Any) -> Widget:
        """The app's tab in ``appkit NAME chat`` (an ``appkit.tui.AppPane``; built when the UI starts)."""


Opener = Callable[..., Any]  # load_app's signature: (name, *, model, settings, **options) -> an opened app
_PARTS = (*App.__annotations__, *(name for name, value in vars(App).items() if callable(value) and name[0] != "_"))


@cache
def available_apps() -> dict[str, App]:
    """Every installed app that keeps the contract, by name (sorted); the others are skipped with a warning."""
    found: dict[str, App] = {}
    for ep in entry_points(group=GROUP):
        try:
            app = ep.load()
        except Exception as e:  # a broken third-party app must not take the CLI down
            _skip(ep.name, ep.value, f"failed to load: {type(e).__name__}: {e}")
            continue
        problem = contract_problem(app)
        if problem is None and app.name in found:
            problem = f"another installed app is already called {app.name!r}"
        if problem is not None:
            _skip(ep.name, ep.value, problem)
            continue
        found[app.name] = app
    return dict(sorted(found.items()))


def contract_problem(app: Any) -> str | None:
    """Why ``app`` does not keep the contract (None when it does)."""
    missing = [part for part in _PARTS if not hasattr(app, part)]
    if missing:
        return f"does not declare {', '.join(missing)} (see appkit.apps.App)"
    if not isinstance(app.name, str) or not NAME.match(app.name):
        return f"its name {app.name!r} is not one lower-case word (letters, digits, -)"
    if app.settings_type is not None and not hasattr(app.settings_type, "__dataclass_fields__"):
        return f"its settings_type {app.settings_type!r} is not a dataclass"
    return None


def _skip(name: str, value: str, why: str) -> None:
    warnings.warn(f"appkit app {name!r} ({value}) is not loaded: {why}.", stacklevel=3)


def get_app(name: str) -> App:
    """The app called ``name``.

    Raises:
        ConfigError: no installed app is called ``name``.
    """
    apps = available_apps()
    if name not in apps:
        known = ", ".join(apps) or "none installed"
        raise ConfigError(f"unknown app {name!r}; installed apps: {known}.")
    return apps[name]


def load_app(name: str, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
    """Open the app called ``name`` with its active (or the named) model."""
    return get_app(name).open(model=model, settings=settings, **options)


__all__ = ["App", "GROUP", "Opener", "available_apps", "contract_problem", "get_app", "load_app"]
