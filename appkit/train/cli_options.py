"""The training flags every trainer's command shares, declared once.

``appkit pretrain``, ``appkit train-support`` and the other apps' trainers take the same
model, budget and base flags; these ``Annotated`` types keep their names, defaults and help
identical, and ``training_options`` turns them into a ``ChatTrainingOptions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.train.pipeline import ChatTrainingOptions

Preset = Annotated[str, typer.Option("--preset", help="Model size: auto, nano, tiny, small, base.")]
Base = Annotated[Optional[str], typer.Option(
    "--base", help="Start from a base model: a name from `appkit pretrain` or a local Hugging Face checkpoint folder.")]
Finetune = Annotated[str, typer.Option(
    "--finetune", help="With --base: lora (a small adapter, merged on save) or full (every weight).")]
MaxMinutes = Annotated[Optional[float], typer.Option("--max-minutes", help="Stop training after this many minutes.")]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", help="Stop training after this many optimizer steps.")]
Epochs = Annotated[float, typer.Option("--epochs", help="Upper bound on passes over the data (early stopping may end sooner).")]
Name = Annotated[Optional[str], typer.Option("--name", help="Model name (default: <app>-<date>-<time>).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the interrupted run (the same --name, or the latest).")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Rows per optimizer step.")]
LearningRate = Annotated[Optional[float], typer.Option("--learning-rate", help="Peak learning rate (default: the preset's).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for the split, initialisation and data order.")]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the model (faster on GPU after a warm-up).")]


def training_options(
    settings: Settings, *, preset: str = "auto", base: str | None = None, finetune: str = "lora",
    max_minutes: float | None = None, max_steps: int | None = None, epochs: float = 10.0,
    batch_size: int | None = None, learning_rate: float | None = None, seed: int = 0, compile: bool = False,
    **more: Any,
) -> ChatTrainingOptions:
    """A ``ChatTrainingOptions`` from the shared flags (``more``: the command's own fields)."""
    from appkit.model.presets import get_preset
    from appkit.train.pipeline import ChatTrainingOptions

    if preset != "auto":
        get_preset(preset)  # a mistyped name is refused before minutes of reading a corpus
    return ChatTrainingOptions(
        preset=preset, base=base, finetune=finetune, max_minutes=max_minutes, max_steps=max_steps, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, seed=seed, compile=compile,
        device=settings.resolve_device(), **more,
    )
