"""``appkit pretrain``: train a base language model on raw text."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from appkit.train.cli_options import (
    Base, BatchSize, Compile, Epochs, LearningRate, MaxMinutes, MaxSteps, Name, Preset, Replace, Resume, Seed,
    training_options,
)


def pretrain_command(
    ctx: typer.Context,
    corpus: list[Path] = typer.Option(..., "--corpus", help="Files or folders of text: .md (front matter stripped), .txt, or .csv/.tsv/.jsonl/.json with a text column. Repeatable."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="The text column of table files (default: text, content, body ...)."),
    preset: Preset = "auto",
    base: Base = None,
    max_minutes: MaxMinutes = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = 10.0,
    name: Name = None,
    resume: Resume = False,
    replace: Replace = False,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    seed: Seed = 0,
    compile: Compile = None,
) -> None:
    """Train a base language model on raw text; apps start from it with --base NAME."""
    from appkit.config import settings_from
    from appkit.train.pretrain import pretrain

    settings = settings_from(ctx)
    options = training_options(settings, preset=preset, base=base, finetune="full", max_minutes=max_minutes,
                               max_steps=max_steps, epochs=epochs, batch_size=batch_size,
                               learning_rate=learning_rate, seed=seed, compile=compile)
    pretrain(corpus, name=name, options=options, text_col=text_col, resume=resume, replace=replace, settings=settings,
             log=typer.echo)
