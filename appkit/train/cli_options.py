"""The training flags every trainer's command shares, declared once.

``appkit pretrain``, ``appkit support train`` and the other apps' trainers take the same
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
def _checked_name(name: Optional[str]) -> Optional[str]:
    """Refuse a bad --name before anything is read or written."""
    from appkit.train.tracking import check_name

    return None if name is None else check_name(name)


Name = Annotated[Optional[str], typer.Option(
    "--name", callback=_checked_name,
    help="Model name: letters, digits, - _ . (default: <app>-<date>-<time>). A name in use needs --replace.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the interrupted run (the same --name, or the latest).")]
Replace = Annotated[bool, typer.Option(
    "--replace", help="Train a new model in place of this app's model (or run) of the same --name.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Rows per optimizer step.")]
LearningRate = Annotated[Optional[float], typer.Option("--learning-rate", help="Peak learning rate (default: the preset's).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for the split, initialisation and data order.")]
Compile = Annotated[Optional[bool], typer.Option(
    "--compile/--no-compile",
    help="torch.compile the model (default: when at least 3 minutes of training are left after 10 steps).")]


def training_options(
    settings: Settings, *, preset: str = "auto", base: str | None = None, finetune: str = "lora",
    max_minutes: float | None = None, max_steps: int | None = None, epochs: float = 10.0,
    batch_size: int | None = None, learning_rate: float | None = None, seed: int = 0, compile: bool | None = None,
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
