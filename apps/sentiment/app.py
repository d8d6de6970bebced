"""The sentiment app's descriptor: every part of appkit's app contract (appkit.apps.App).

Published through the ``appkit.apps`` entry point, as a user's own app would be. This module
stays small and cheap to import: the analyzer, its training and its TUI pane load when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer
    from textual.widget import Widget

    from appkit.apps import Opener, Progress
    from appkit.config import Settings
    from appkit.eval import EvalTable


class SentimentApp:
    """A sentiment classifier trained on a team's own labelled texts; batch analysis with a chart."""

    name = "sentiment"
    title = "Sentiment"
    description = "Sentiment classifier trained on your own labelled texts; batch analysis with a summary chart."
    train_hint = "appkit sentiment train --data labeled.csv"
    settings_type = None  # everything it does is chosen per command
    aliases: dict[str, str] = {}

    def commands(self) -> typer.Typer:
        from apps.sentiment.cli import sentiment_app

        return sentiment_app

    def train(self, data: str | Path | Sequence[str | Path], *, settings: Settings, name: str | None = None,
              **options: Any) -> Any:
        """``train_sentiment(data, ...)``: options as its keyword arguments."""
        from apps.sentiment.train import train_sentiment

        if not isinstance(data, (str, Path)):
            raise TypeError("the sentiment app trains on one labelled file")
        return train_sentiment(data, name=name, settings=settings, **options)

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings,
                 progress: Progress | None = None, **options: Any) -> EvalTable:
        from apps.sentiment.evaluate import evaluate_sentiment

        return evaluate_sentiment(data, models, settings, progress=progress, **options)

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        from apps.sentiment.analyzer import SentimentAnalyzer

        return SentimentAnalyzer.open(model, settings=settings, **options)

    def pane(self, *, settings: Settings, model: str | None = None, opener: Opener | None = None,
             id: str | None = None, **options: Any) -> Widget:
        from apps.sentiment.pane import SentimentPane

        return SentimentPane(settings=settings, model=model, opener=opener, id=id, **options)


APP = SentimentApp()
