"""``appkit support train | ask | eval | chat | demo`` (also ``appkit train-support``, ``ask``, ``eval``, ``chat``, ``demo``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from appkit.eval.cli import JsonOut, Models
from appkit.train.cli_options import (
    Base, BatchSize, Compile, Epochs, Finetune, LearningRate, MaxMinutes, MaxSteps, Name, Preset, Replace, Resume,
    Seed, training_options,
)

if TYPE_CHECKING:
    from appkit.config import Settings

support_cli = typer.Typer(no_args_is_help=True, help="Customer-support bot trained from your past tickets.")
REPLY_MODE_HELP = ("grounded (a past reply chosen with the model's judgement; default), select (past replies only) "
                   "or generate (the model's own reply).")


def _settings(ctx: typer.Context, reply_mode: str | None = None) -> Settings:
    """The command's settings, with ``--reply-mode`` over ``[support] reply_mode``."""
    from dataclasses import replace

    from appkit.config import settings_from
    from apps.support.replies import check_mode

    settings = settings_from(ctx)
    if reply_mode is None:
        return settings
    return settings.with_app("support", replace(settings.app("support"), reply_mode=check_mode(reply_mode)))


@support_cli.command("train")
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
    compile: Compile = None,
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
    from appkit.data import parse_speaker_map
    from apps.support.train import train_support

    settings = _settings(ctx)
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


@support_cli.command("ask")
def ask_command(
    ctx: typer.Context,
    message: str = typer.Argument(..., help="The customer's message."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or a model directory (default: the active support model)."),
    conversation: Optional[int] = typer.Option(None, "--conversation", help="Continue this stored conversation (default: start a new one)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0,
                                                help="Sample at this temperature (default: 0, the most likely reply)."),
    top_p: Optional[float] = typer.Option(None, "--top-p"),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=0),
    repetition_penalty: Optional[float] = typer.Option(None, "--repetition-penalty", help="Default: 1 (none)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Default: 256."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    reply_mode: Optional[str] = typer.Option(None, "--reply-mode", help=REPLY_MODE_HELP),
    stats: bool = typer.Option(False, "--stats", help="Print time to first token and tokens/s to stderr."),
) -> None:
    """Print one reply to MESSAGE on stdout, streamed as it is generated, and store the exchange."""
    from appkit.apps import load_app
    from apps.support.replies import reply_params

    given = {"max_new_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k,
             "repetition_penalty": repetition_penalty, "seed": seed}
    params = reply_params(**{k: v for k, v in given.items() if v is not None})
    bot = load_app("support", model=model, settings=_settings(ctx, reply_mode))
    try:
        conv_id = conversation if conversation is not None else bot.start().id
        turn = bot.stream(conv_id, message, params=params)
        for piece in turn:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    finally:
        bot.close()
    typer.echo("[" + "; ".join(_turn_notes(bot, turn, conv_id, stats)) + "]", err=True)


def _turn_notes(bot: Any, turn: Any, conv_id: int, stats: bool) -> list[str]:
    """What `ask` says on stderr about a reply: where it came from, handoffs, safety, speed."""
    notes = [f"conversation {conv_id} (continue with --conversation {conv_id})"]
    if turn.escalated:
        notes.append(f"handed to a human ({turn.reason.replace('_', ' ')})")
    grounding = turn.grounding or {}
    if grounding.get("source") == "case":
        notes.append(f"{grounding['mode']}: a past reply (conversation {grounding.get('case_conversation')}, "
                     f"score {grounding.get('score')})")
    elif grounding.get("source") == "generated" and grounding.get("mode") != "generate":
        notes.append(f"{grounding['mode']}: written by the model (no past reply fitted)")
    moderation = turn.user_message.moderation if turn.user_message else None
    if moderation and moderation.get("action", "allow") != "allow":
        notes.append(f"safety: input {moderation['action']} ({moderation.get('backend', '?')})")
    if stats and turn.stats is not None:
        s = turn.stats
        notes.append(f"{bot.model_name}: {s.completion_tokens} tokens, first after {s.time_to_first_token_s:.3f}s, "
                     f"{s.tokens_per_second:.1f} tokens/s, confidence {s.mean_logprob or 0:.2f}")
    return notes


@support_cli.command("eval")
def eval_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="The history the model was trained on: the conversations it was validated on are scored."),
    model: Models = None,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most this many held-out conversations (default 300)."),
    json_out: JsonOut = None,
) -> None:
    """Score models on held-out conversations: perplexity, BLEU, ROUGE-L, intent accuracy vs. a retrieval baseline."""
    from appkit.eval.cli import run_eval

    run_eval("support", data=data, models=model, settings=_settings(ctx), json_out=json_out, limit=limit)


@support_cli.command("chat")
def chat_command(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or a model directory (default: the active support model)."),
    conversation: Optional[int] = typer.Option(None, "--conversation", help="Open this stored conversation."),
    reply_mode: Optional[str] = typer.Option(None, "--reply-mode", help=REPLY_MODE_HELP),
) -> None:
    """Open the terminal UI on the support tab: chat with the bot, see safety flags, rate replies, export conversations."""
    from appkit.tui import run_chat

    run_chat(_settings(ctx, reply_mode), app="support", model=model, conversation=conversation)


@support_cli.command("demo")
def demo_command(
    ctx: typer.Context,
    max_minutes: float = typer.Option(7.0, "--max-minutes", help="Training budget for the demo model."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Open the chat UI when training is done."),
) -> None:
    """Train the support bot on the sample history shipped with appkit, then open the chat."""
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.app import SAMPLE_HISTORY
    from apps.support.train import train_support

    settings = _settings(ctx)
    typer.echo(f"training the demo support bot on {SAMPLE_HISTORY.name} (at most {max_minutes:g} minutes)")
    # The time budget, not the epoch count, ends the demo's training (early stopping still can).
    options = ChatTrainingOptions(preset="tiny", max_minutes=max_minutes, epochs=1000, device=settings.resolve_device())
    # Each demo replaces the previous demo's model (and only that one: another app's is refused).
    train_support(SAMPLE_HISTORY, name="support-demo", options=options, replace=True, settings=settings,
                  log=typer.echo)
    if chat:
        from appkit.tui import run_chat

        run_chat(settings, app="support")


from apps.support.retrain_cli import retrain_command  # noqa: E402 - registered on support_cli, defined above

support_cli.command("retrain")(retrain_command)
