"""The terminal UI (``appkit chat``): talk to the support bot, write drafts, analyze sentiment.

Importing this package costs nothing: Textual and the models load inside ``run_chat``.

Settings, in appkit.toml (APPKIT_HOME or the current directory):

    [tui]
    theme = "textual-light"          # any Textual theme; ctrl+t toggles light / dark
    light_theme = "textual-light"    # what ctrl+t switches between
    dark_theme = "textual-dark"
    temperature = 0.7                # sampling of support replies: also top_p, top_k,
    max_tokens = 200                 # repetition_penalty, seed
    export_dir = "~/exports"         # default folder of ctrl+s (else the current directory)

    [tui.bindings]                   # binding id = key(s); F1 lists the ids
    export = "f6"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appkit.config import Settings

APPS = ("support", "writer", "sentiment")


def run_chat(settings: Settings, *, app: str = "support", model: str | None = None,
             conversation: int | None = None) -> None:
    """Open the chat UI on ``app`` (support, writer or sentiment); returns when the user quits.

    Raises:
        ConfigError: ``app`` is not one the UI offers.
    """
    from appkit.errors import ConfigError

    if app not in APPS:
        raise ConfigError(f"--app {app!r} is not one of {', '.join(APPS)}.")
    from appkit.tui.app import run_chat_app

    run_chat_app(settings, app=app, model=model, conversation=conversation)


__all__ = ["APPS", "run_chat"]
