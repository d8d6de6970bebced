"""The ``appkit`` command.

Importing this module must stay cheap (``appkit --help`` answers in well under a second):
torch, transformers and SQLAlchemy are imported inside the commands that need them. Apps add
their own commands through the registry (``appkit.apps``). Every ``AppkitError`` is printed
as one message with a non-zero exit code; a traceback means a bug in appkit.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from appkit.errors import AppkitError, ConfigError

cli = typer.Typer(
    name="appkit",
    help="Train your own language model on your own data and run chatbots and content tools on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_cli = typer.Typer(help="Trained models: list, show, promote.", no_args_is_help=True)
cli.add_typer(models_cli, name="models")


@cli.callback()
def root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", envvar="APPKIT_HOME", help="Where models, runs and the database live (default ~/.appkit)."),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="APPKIT_DATABASE_URL", help="SQLAlchemy URL; SQLite in --home by default.", show_envvar=True),
    device: Optional[str] = typer.Option(None, "--device", envvar="APPKIT_DEVICE", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Settings shared by every command (environment variables and appkit.toml work too)."""
    from appkit.config import load_settings

    ctx.obj = load_settings(home=home, database_url=database_url, device=device)


def _settings(ctx: typer.Context):  # noqa: ANN202 - Settings, imported lazily
    from appkit.config import settings_from

    return settings_from(ctx)


REPLY_MODE_HELP = ("Support: grounded (a past reply chosen with the model's judgement; default), "
                   "select (past replies only) or generate (the model's own reply).")


def _with_reply_mode(settings: Any, app: str, mode: str | None) -> Any:
    """``settings`` with ``[support] reply_mode`` set to ``mode`` (the support app reads it)."""
    from dataclasses import replace

    if mode is None:
        return settings
    if app != "support":
        raise ConfigError(f"--reply-mode applies to the support app, not to {app!r}.")
    sections = dict(settings.sections)
    sections["support"] = {**settings.section("support"), "reply_mode": mode}
    return replace(settings, sections=sections)


@cli.command()
def ask(
    ctx: typer.Context,
    message: str = typer.Argument(..., help="The customer's message."),
    app: str = typer.Option("support", "--app", help="Which app answers."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or a model directory (default: the app's active model)."),
    conversation: Optional[int] = typer.Option(None, "--conversation", help="Continue this stored conversation (default: start a new one)."),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0, help="0 = deterministic (greedy)."),
    top_p: float = typer.Option(0.9, "--top-p"),
    top_k: int = typer.Option(50, "--top-k", min=0),
    repetition_penalty: float = typer.Option(1.1, "--repetition-penalty"),
    max_tokens: int = typer.Option(200, "--max-tokens", min=1),
    seed: Optional[int] = typer.Option(None, "--seed"),
    reply_mode: Optional[str] = typer.Option(None, "--reply-mode", help=REPLY_MODE_HELP),
    stats: bool = typer.Option(False, "--stats", help="Print time to first token and tokens/s to stderr."),
) -> None:
    """Print one reply to MESSAGE on stdout, streamed as it is generated, and store the exchange."""
    from appkit.apps import load_app
    from appkit.engine import GenerationParams

    params = GenerationParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                              repetition_penalty=repetition_penalty, seed=seed)
    bot = load_app(app, model=model, settings=_with_reply_mode(_settings(ctx), app, reply_mode))
    try:
        conv_id = conversation if conversation is not None else bot.start().id
        turn = bot.stream(conv_id, message, params=params)
        for piece in turn:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    finally:
        bot.close()
    notes = [f"conversation {conv_id} (continue with --conversation {conv_id})"]
    if turn.escalated:
        notes.append(f"handed to a human ({turn.reason.replace('_', ' ')})")
    grounding = getattr(turn, "grounding", None) or {}
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
    typer.echo("[" + "; ".join(notes) + "]", err=True)


@cli.command()
def chat(
    ctx: typer.Context,
    app: str = typer.Option("support", "--app", help="Open on this app: support, writer or sentiment."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or a model directory (default: the app's active model)."),
    conversation: Optional[int] = typer.Option(None, "--conversation", help="Open this stored conversation."),
    reply_mode: Optional[str] = typer.Option(None, "--reply-mode", help=REPLY_MODE_HELP),
) -> None:
    """Open the terminal UI: chat with the bot, see safety flags, rate replies, export conversations."""
    from appkit.tui import run_chat

    settings = _with_reply_mode(_settings(ctx), "support", reply_mode)
    run_chat(settings, app=app, model=model, conversation=conversation)


@cli.command("eval")
def evaluate(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Support/writer: the data the model was trained on (its held-out part is scored). Sentiment: a labelled test file."),
    app: str = typer.Option("support", "--app"),
    model: Optional[list[str]] = typer.Option(None, "--model", help="Model name or directory; repeat to compare (default: active)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most this many held-out items (default: 300 conversations or articles; every sentiment text)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the table as JSON here."),
    other: Optional[Path] = typer.Option(None, "--other", help="Writer: text in another voice, whose perplexity is compared with the brand's."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Sentiment: the text column of the test file."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Sentiment: the label column of the test file."),
) -> None:
    """Score models on held-out data (support: perplexity, BLEU, ROUGE-L, intent accuracy vs. a retrieval baseline;
    writer: voice perplexity and length control; sentiment: accuracy, macro F1 and calibration vs. the majority class)."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from appkit.apps import get_app
    from appkit.eval import print_table

    target = get_app(app)
    if not hasattr(target, "evaluate"):
        raise ConfigError(f"the {app} app has no evaluation.")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        given = {"other": other, "limit": limit, "text_col": text_col, "label_col": label_col}
        extra = {key: value for key, value in given.items() if value is not None}  # else each app's default
        result = target.evaluate(data=data, models=list(model or [None]), settings=_settings(ctx), progress=progress,
                                 **extra)
    print_table(result)
    payload = {"eval": app, **result.as_dict()}
    if json_out:
        json_out.write_text(json.dumps(payload, indent=2))
    typer.echo(json.dumps(payload))


@models_cli.command("list")
def models_list(ctx: typer.Context, app: Optional[str] = typer.Option(None, "--app", help="Only this app's models.")) -> None:
    """Trained models with preset, size, data, validation figure (perplexity or accuracy) and date."""
    from rich.console import Console
    from rich.table import Table

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        records = store.list_models(app=app)
    if not records:
        typer.echo("no models yet: train one with `appkit train-support --history tickets.csv`.")
        return
    table = Table("name", "app", "status", "preset", "params", "data", "validation", "trained", box=None)
    for r in records:
        metrics, data = r.metrics or {}, r.data or {}
        params = f"{r.params / 1e6:.1f}M" if r.params else "-"
        table.add_row(
            r.name, r.app, "[green]active[/]" if r.status == "active" else r.status, r.preset or "-", params,
            _data_summary(data), _validation_summary(metrics), r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


def _validation_summary(metrics: dict[str, Any]) -> str:
    """A model's headline validation figure: perplexity for language models, accuracy for classifiers."""
    if metrics.get("val_perplexity"):
        return f"ppl {metrics['val_perplexity']:.2f}"
    if metrics.get("val_accuracy") is not None:
        return f"acc {metrics['val_accuracy']:.1%}"
    return "-"


def _data_summary(data: dict[str, object]) -> str:
    """What a model learned from, in a few words: '4514 conv. (tickets.csv)', '472 docs (posts)'."""
    if data.get("summary"):
        return str(data["summary"])
    if data.get("conversations"):
        return f"{data['conversations']} conv. ({Path(str(data.get('history', ''))).name})"
    return "-"


@models_cli.command("promote")
def models_promote(ctx: typer.Context, name: str = typer.Argument(..., help="A registered model name.")) -> None:
    """Make NAME its app's active model (the previous one is archived)."""
    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        record = store.promote(name)
    typer.echo(f"{record.name} is now the active {record.app} model.")


@models_cli.command("show")
def models_show(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Everything recorded about model NAME (JSON)."""
    import dataclasses
    import json

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        record = store.get_model(name)
    typer.echo(json.dumps(dataclasses.asdict(record), indent=2, default=str))


def _mount_subcommands() -> None:
    from appkit.apps import available_apps
    from appkit.safety.cli import audit_command, safety_app
    from appkit.serve.cli import keys_app, serve_command
    from appkit.store.cli import conversations_app, db_app
    from appkit.train.cli import pretrain_command

    cli.add_typer(db_app, name="db")
    cli.add_typer(conversations_app, name="conversations")
    cli.add_typer(safety_app, name="safety")
    cli.command("audit")(audit_command)
    cli.command("pretrain")(pretrain_command)
    cli.command("serve")(serve_command)
    cli.add_typer(keys_app, name="keys")
    for app in available_apps().values():
        app.register_cli(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``appkit`` command; returns the exit code."""
    _mount_subcommands()
    try:
        code = cli(args=argv, standalone_mode=False)
    except AppkitError as e:
        _fail(str(e), e.exit_code)
        return e.exit_code
    except KeyboardInterrupt:
        _fail("interrupted.", 130)
        return 130
    except typer.Exit as e:  # --help, or a command that exits on purpose
        return e.exit_code
    except typer.Abort:
        _fail("aborted.", 1)
        return 1
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        if _is_usage_error(e):
            e.show()  # type: ignore[attr-defined]
            return e.exit_code  # type: ignore[attr-defined,no-any-return]
        raise
    # In non-standalone mode click returns ctx.exit()'s code (or the command's return value).
    return code if isinstance(code, int) else 0


def _is_usage_error(error: Exception) -> bool:
    """A bad option or argument. typer 0.29+ vendors its own click, whose ClickException derives
    from typer.TyperException instead of click's; older typer raises click's own."""
    import click

    usage_errors: tuple[type[Exception], ...] = (click.ClickException, *(
        [typer.TyperException] if hasattr(typer, "TyperException") else []))
    return isinstance(error, usage_errors) and hasattr(error, "show")


def _fail(message: str, code: int) -> None:
    from rich.console import Console
    from rich.text import Text

    # Text, not markup: messages quote user data such as "[EMAIL]" verbatim.
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text("error: ", style="bold red") + Text(message))
