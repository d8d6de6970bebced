"""The ``[tui]`` table of appkit.toml, typed: theme, sampling of chat replies, export folder, keys.

    [tui]
    theme = "textual-light"          # any Textual theme; ctrl+t toggles light / dark
    light_theme = "textual-light"    # what ctrl+t switches between
    dark_theme = "textual-dark"
    temperature = 0.7                # sampling of chat replies (default: the model's own):
    max_tokens = 200                 # also top_p, top_k, repetition_penalty, seed
    export_dir = "~/exports"         # default folder of ctrl+s (else the current directory)

    [tui.bindings]                   # binding id = key(s); F1 lists the ids
    export = "f6"
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TuiSettings:
    """How the terminal UI looks and samples; None means the model's own default."""

    theme: str = "textual-dark"
    light_theme: str = "textual-light"
    dark_theme: str = "textual-dark"
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    export_dir: str | None = None
    bindings: dict[str, str] = field(default_factory=dict)


__all__ = ["TuiSettings"]
