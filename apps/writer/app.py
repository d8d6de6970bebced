"""The writer app's descriptor: every part of appkit's app contract (appkit.apps.App).

Published through the ``appkit.apps`` entry point, as a user's own app would be. This module
stays small and cheap to import: the writer, its training and its TUI pane load when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.writer.settings import WriterSettings

if TYPE_CHECKING:
    import typer
    from textual.widget import Widget

    from appkit.apps import Opener, Progress
    from appkit.config import Settings
    from appkit.eval import EvalTable


class WriterApp:
    """Learns a brand's voice from its own articles and drafts new pieces from a brief."""

    name = "writer"
    title = "Writer"
    description = "Drafts blog posts, social posts, emails and product copy in your brand's voice."
    train_hint = "appkit writer train --corpus posts/"
    settings_type = WriterSettings
    aliases = {"train-writer": "train", "write": "write"}

    def commands(self) -> typer.Typer:
        from apps.writer.cli import writer_cli

        return writer_cli

    def train(self, data: str | Path | Sequence[str | Path], *, settings: Settings, name: str | None = None,
              **options: Any) -> Any:
        """``train_writer(corpus=data, ...)``: options as its keyword arguments."""
        from apps.writer.train import train_writer

        return train_writer(data, name=name, settings=settings, **options)

    def evaluate(self, *, data: str | Path, models: list[str | None], settings: Settings,
                 progress: Progress | None = None, **options: Any) -> EvalTable:
        from apps.writer.evaluate import evaluate_writer

        return evaluate_writer(data, models, settings, progress=progress, **options)

    def open(self, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
        from apps.writer.writer import Writer

        return Writer.open(model=model, settings=settings, **options)

    def pane(self, *, settings: Settings, model: str | None = None, opener: Opener | None = None,
             id: str | None = None, **options: Any) -> Widget:
        from apps.writer.pane import WriterPane

        return WriterPane(settings=settings, model=model, opener=opener, id=id, **options)


APP = WriterApp()
