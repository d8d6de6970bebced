"""The terminal UI (``appkit NAME chat``): one tab per installed app, each the app's own pane.

Importing this package costs nothing: Textual and the models load inside ``run_chat``.
Settings are the ``[tui]`` table of appkit.toml (appkit/tui/settings.py lists every key).
An app's pane follows ``appkit.tui.apps_panels.AppPane``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.config import Settings


def run_chat(settings: Settings, *, app: str | None = None, model: str | None = None, **pane_options: Any) -> None:
    """Open the terminal UI on ``app``'s tab (default: the first); returns when the user quits.

    ``model`` and ``pane_options`` (e.g. the support pane's ``conversation``) go to that tab's pane.

    Raises:
        ConfigError: ``app`` is not an installed app.
    """
    from appkit.tui.app import run_chat_app

    run_chat_app(settings, app=app, model=model, **pane_options)


__all__ = ["run_chat"]
