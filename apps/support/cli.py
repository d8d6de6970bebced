"""The support app's commands: ``appkit train-support`` and ``appkit demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from appkit.train.cli_options import (
    Base, BatchSize, Compile, Epochs, Finetune, LearningRate, MaxMinutes, MaxSteps, Name, Preset, Replace, Resume,
    Seed, training_options,
)


def register(cli: typer.Typer) -> None:
    """Add the support commands to the root CLI."""
    cli.command("train-support")(train_support_command)
    cli.command("demo")(demo_command)


def train_support_command(
    ctx: typer.Context,
    history: Path = typer.Option(..., "--history", help="Past conversations: CSV, TSV, JSONL or JSON (pairs, long or dialogue shape)."),
    preset: Preset = "auto",
    base: Base = None,
    finetune: Finetune = "lora",
    max_minutes: MaxMinutes = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = 10.0,
    name: Name = None,
    resume: Resume = False,
    replace: Replace = False,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    seed: Seed = 0,
    compile: Compile = False,
    shape: str = typer.Option("auto", "--shape", help="History shape: auto, pairs, long, dialogue."),
    user_col: Optional[str] = typer.Option(None, "--user-col", help="Column of the customer's message (pairs)."),
    assistant_col: Optional[str] = typer.Option(None, "--assistant-col", help="Column of the agent's reply (pairs)."),
    conversation_col: Optional[str] = typer.Option(None, "--conversation-col", help="Conversation id column (long)."),
    role_col: Optional[str] = typer.Option(None, "--role-col", help="Speaker/role column (long)."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Message text column (long)."),
    speaker_map: Optional[list[str]] = typer.Option(None, "--speaker-map", help="NAME=user|assistant, repeatable."),
    no_scrub: bool = typer.Option(False, "--no-scrub", help="Keep personal data (emails, phones, cards, order ids) as is."),
    retrieval: bool = typer.Option(True, "--retrieval/--no-retrieval", help="Ground replies on similar past cases."),
    include_feedback: bool = typer.Option(False, "--include-feedback", help="Add stored conversations rated good; drop replies rated bad."),
    keep_toxic: bool = typer.Option(False, "--keep-toxic", help="Keep conversations the toxicity filter flags (they are counted, not dropped)."),
) -> None:
    """Train the support bot on past tickets, evaluate it and make it the active support model."""
    from appkit.config import settings_from
    from appkit.data import parse_speaker_map
    from apps.support.train import train_support

    settings = settings_from(ctx)
    options = training_options(
        settings, preset=preset, base=base, finetune=finetune, max_minutes=max_minutes, max_steps=max_steps,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed, compile=compile,
        scrub_pii=not no_scrub, keep_toxic=keep_toxic,
    )
    read_options = {"shape": shape, "user_col": user_col, "assistant_col": assistant_col,
                    "conversation_col": conversation_col, "role_col": role_col, "text_col": text_col,
                    "speaker_map": parse_speaker_map(speaker_map or [])}
    train_support(history, name=name, options=options, resume=resume, replace=replace, settings=settings,
                  read_options=read_options, retrieval=retrieval, include_feedback=include_feedback, log=typer.echo)


def demo_command(
    ctx: typer.Context,
    max_minutes: float = typer.Option(7.0, "--max-minutes", help="Training budget for the demo model."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Open the chat UI when training is done."),
) -> None:
    """Train the support bot on the sample history shipped with appkit, then open the chat."""
    from appkit.config import settings_from
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.app import SAMPLE_HISTORY
    from apps.support.train import train_support

    settings = settings_from(ctx)
    typer.echo(f"training the demo support bot on {SAMPLE_HISTORY.name} (at most {max_minutes:g} minutes)")
    # The time budget, not the epoch count, ends the demo's training (early stopping still can).
    options = ChatTrainingOptions(preset="tiny", max_minutes=max_minutes, epochs=1000, device=settings.resolve_device())
    # Each demo replaces the previous demo's model (and only that one: another app's is refused).
    train_support(SAMPLE_HISTORY, name="support-demo", options=options, replace=True, settings=settings,
                  log=typer.echo)
    if chat:
        from appkit.tui import run_chat

        run_chat(settings, app="support")
