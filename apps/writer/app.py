"""The writer app's descriptor: its name, commands, training entry point, writer and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from appkit.config import Settings


class WriterApp:
    """Published to appkit through the ``appkit.apps`` entry point."""

    name = "writer"
    description = "Drafts blog posts, social posts, emails and product copy in your brand's voice."

    def register_cli(self, cli: typer.Typer) -> None:
        from apps.writer.cli import register

        register(cli)

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        from apps.writer.writer import Writer

        return Writer.open(model=model, settings=settings, **options)

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings, **kwargs: Any) -> Any:
        from apps.writer.evaluate import evaluate_writer

        return evaluate_writer(data, models, settings, **kwargs)

    def train(self, **kwargs: Any) -> Any:
        from apps.writer.train import train_writer

        return train_writer(**kwargs)


APP = WriterApp()
