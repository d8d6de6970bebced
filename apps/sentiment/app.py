"""The sentiment app's descriptor: its name, commands, training entry point and analyzer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from appkit.config import Settings


class SentimentApp:
    """Published to appkit through the ``appkit.apps`` entry point."""

    name = "sentiment"
    description = "Sentiment classifier trained on your own labelled texts; batch analysis with a summary chart."

    def register_cli(self, cli: typer.Typer) -> None:
        from apps.sentiment.cli import register

        register(cli)

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        from apps.sentiment.analyzer import SentimentAnalyzer

        return SentimentAnalyzer.open(model, settings=settings, **options)

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings, **kwargs: Any) -> Any:
        from apps.sentiment.evaluate import evaluate_sentiment

        return evaluate_sentiment(data, models, settings, **kwargs)

    def train(self, **kwargs: Any) -> Any:
        from apps.sentiment.train import train_sentiment

        return train_sentiment(**kwargs)


APP = SentimentApp()
