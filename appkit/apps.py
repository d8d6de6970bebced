"""The registry of apps: first-party and users' own, discovered through entry points.

An app is a small object (see ``App``) published under the ``appkit.apps`` entry-point group:

    [project.entry-points."appkit.apps"]
    myapp = "mypackage.app:APP"

The CLI and the TUI find apps only through this registry, so a user's app plugs in the same
way the first-party ones do. Loading the registry imports the apps' small descriptor modules
only; models and heavy libraries load when an app is opened.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from appkit.errors import ConfigError

if TYPE_CHECKING:
    import typer

    from appkit.config import Settings

GROUP = "appkit.apps"


@runtime_checkable
class App(Protocol):
    """What an app publishes to appkit."""

    name: str
    description: str

    def register_cli(self, cli: typer.Typer) -> None:
        """Add the app's own commands (e.g. ``train-support``) to the root CLI."""

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        """A ready-to-use instance of the app (loads its model)."""


@cache
def available_apps() -> dict[str, App]:
    """All installed apps by name."""
    found: dict[str, App] = {}
    for ep in entry_points(group=GROUP):
        try:
            app = ep.load()
        except Exception as e:  # a broken third-party app must not take the CLI down
            import warnings

            warnings.warn(f"appkit app {ep.name!r} ({ep.value}) failed to load: {e}", stacklevel=2)
            continue
        found[app.name] = app
    return dict(sorted(found.items()))


def get_app(name: str) -> App:
    """The app called ``name``."""
    apps = available_apps()
    if name not in apps:
        known = ", ".join(apps) or "none installed"
        raise ConfigError(f"unknown app {name!r}; installed apps: {known}.")
    return apps[name]


def load_app(name: str, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
    """Open the app called ``name`` with its active (or the named) model."""
    return get_app(name).open(model=model, settings=settings, **options)
