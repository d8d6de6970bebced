"""The support app's descriptor: its name, commands, training entry point and bot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from appkit.config import Settings

SAMPLE_HISTORY = Path(__file__).resolve().parent / "data" / "sample_history.csv"
TRAIN_HINT = "run `appkit train-support --history tickets.csv` (or `appkit demo` for the shipped sample)"


class SupportApp:
    """Published to appkit through the ``appkit.apps`` entry point."""

    name = "support"
    description = "Customer-support bot trained from your past tickets."

    def register_cli(self, cli: typer.Typer) -> None:
        from apps.support.cli import register

        register(cli)

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        from apps.support.bot import SupportBot

        return SupportBot.open(model=model, settings=settings, **options)

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings, **kwargs: Any) -> Any:
        from apps.support.evaluate import evaluate_support

        return evaluate_support(data, models, settings, **kwargs)

    def train(self, **kwargs: Any) -> Any:
        from apps.support.train import train_support

        return train_support(**kwargs)


APP = SupportApp()
