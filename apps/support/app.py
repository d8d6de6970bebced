"""The support app's descriptor: every part of appkit's app contract (appkit.apps.App).

Published through the ``appkit.apps`` entry point, as a user's own app would be. This module
stays small and cheap to import: the bot, its training and its TUI pane load when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.support.settings import SupportSettings

if TYPE_CHECKING:
    import typer
    from textual.widget import Widget

    from appkit.apps import Opener, Progress
    from appkit.config import Settings
    from appkit.eval import EvalTable

SAMPLE_HISTORY = Path(__file__).resolve().parent / "data" / "sample_history.csv"
TRAIN_COMMAND = "appkit support train --history tickets.csv"
TRAIN_HINT = f"run `{TRAIN_COMMAND}` (or `appkit support demo` for the shipped sample)"


class SupportApp:
    """Customer-support bot trained from past tickets; hands conversations to people when it should."""

    name = "support"
    title = "Support"
    description = "Customer-support bot trained from your past tickets."
    train_hint = TRAIN_COMMAND
    settings_type = SupportSettings
    aliases = {"train-support": "train", "ask": "ask", "eval": "eval", "chat": "chat", "demo": "demo"}

    def commands(self) -> typer.Typer:
        from apps.support.cli import support_cli

        return support_cli

    def train(self, data: str | Path | Sequence[str | Path], *, settings: Settings, name: str | None = None,
              **options: Any) -> Any:
        """``train_support(history=data, ...)``: options as its keyword arguments."""
        from apps.support.train import train_support

        if not isinstance(data, (str, Path)):
            raise TypeError("the support app trains on one history file")
        return train_support(data, name=name, settings=settings, **options)

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings,
                 progress: Progress | None = None, **options: Any) -> EvalTable:
        from apps.support.evaluate import evaluate_support

        return evaluate_support(data, models, settings, progress=progress, **options)

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        from apps.support.bot import SupportBot

        return SupportBot.open(model=model, settings=settings, **options)

    def insights_reference(self, *, settings: Settings, model: str | None = None) -> Any:
        """What the model was trained on, for `appkit report` (drift, topic names); read by appkit.insights."""
        from apps.support.insights import support_reference

        return support_reference(settings=settings, model=model)

    def pane(self, *, settings: Settings, model: str | None = None, opener: Opener | None = None,
             id: str | None = None, **options: Any) -> Widget:
        from apps.support.pane import SupportPane

        return SupportPane(settings=settings, model=model, opener=opener, id=id, **options)


APP = SupportApp()
