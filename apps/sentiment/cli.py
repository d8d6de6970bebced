"""``appkit sentiment train | analyze | text | eval`` and the shortcut ``appkit sentiment "some text"``.

The group treats a first argument that is not one of its commands as a text to analyze, so
``appkit sentiment "I love it"`` is ``appkit sentiment text "I love it"`` (write that form for
a text that is itself a command name, e.g. ``appkit sentiment text train``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from appkit.eval.cli import JsonOut, Models
from appkit.train.cli_options import Name, Replace
from apps.sentiment.train import SMALL_BASE_PARAMETERS, SentimentOptions


class _TextByDefault(TyperGroup):
    """A group whose unknown first argument is the text for the ``text`` command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and (args[0] == "-" or not args[0].startswith("-")):
            args = ["text", *args]
        return super().parse_args(ctx, args)


_DEFAULTS = SentimentOptions()  # one source for the flags' defaults

sentiment_app = typer.Typer(
    cls=_TextByDefault, no_args_is_help=True,
    help='Sentiment classifier trained on your labelled texts. `appkit sentiment "TEXT"` analyzes one text.',
)


def _settings(ctx: typer.Context) -> Any:
    from appkit.config import settings_from

    return settings_from(ctx)


@sentiment_app.command("train")
def train_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labelled texts: CSV, TSV, JSONL or JSON with a text and a label column."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Text column (default: text, sentence, content, review ...)."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Label column (default: label, sentiment, rating, stars ...); any number of labels."),
    base: Optional[str] = typer.Option(None, "--base", help="Put the classification head on a causal LM saved by appkit: a registered name or a directory."),
    name: Name = None,
    replace: Replace = False,
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop training after this many minutes (the best weights are kept)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps."),
    epochs: float = typer.Option(_DEFAULTS.epochs, "--epochs", help="Upper bound on passes over the data (early stopping may end sooner)."),
    batch_size: int = typer.Option(_DEFAULTS.batch_size, "--batch-size", min=1),
    learning_rate: Optional[float] = typer.Option(
        None, "--learning-rate",
        help=f"Default 1e-3 from scratch and on a --base under {SMALL_BASE_PARAMETERS // 1_000_000}M parameters, "
             "1e-4 on a larger one."),
    hidden_size: int = typer.Option(_DEFAULTS.hidden_size, "--hidden-size", min=16, help="Encoder width (from scratch)."),
    layers: int = typer.Option(_DEFAULTS.layers, "--layers", min=1, help="Encoder layers (from scratch)."),
    heads: int = typer.Option(_DEFAULTS.heads, "--heads", min=1, help="Attention heads (from scratch)."),
    max_length: int = typer.Option(_DEFAULTS.max_length, "--max-length", min=8, help="Tokens per text; longer texts keep their start and end."),
    val_fraction: float = typer.Option(_DEFAULTS.val_fraction, "--val-fraction", help="Share held out for early stopping and calibration."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch (1 is fastest on a busy machine)."),
    ngrams: bool = typer.Option(_DEFAULTS.ngrams, "--ngrams/--no-ngrams",
                                help="Train a word 1-3-gram model to blend with the encoder (kept if it helps on validation)."),
    lstm: bool = typer.Option(_DEFAULTS.lstm, "--lstm/--no-lstm",
                              help="Train a BiLSTM over words and their character n-grams to blend with the encoder "
                                   "(kept if it helps on validation; what is left of --max-minutes after the encoder, "
                                   "which may use three quarters)."),
    seed: int = typer.Option(0, "--seed"),
    encoding: str = typer.Option("utf-8", "--encoding"),
) -> None:
    """Train a sentiment classifier on labelled texts, calibrate it and make it the active sentiment model."""
    from apps.sentiment.train import train_sentiment

    options = SentimentOptions(base=base, hidden_size=hidden_size, layers=layers, heads=heads, max_length=max_length,
                               epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                               val_fraction=val_fraction, max_minutes=max_minutes, max_steps=max_steps,
                               threads=threads, ngrams=ngrams, lstm=lstm, seed=seed)
    trained = train_sentiment(data, name=name, options=options, settings=_settings(ctx), text_col=text_col,
                              label_col=label_col, encoding=encoding, replace=replace, log=typer.echo)
    m = trained.metrics
    blend = m.get("blend") or {}
    if blend.get("members"):
        from apps.sentiment.blend import MEMBER_TITLES

        alone = ", ".join(f"{MEMBER_TITLES[n]} {f['val_accuracy']:.4f}" for n, f in blend["alone"].items())
        typer.echo(f"validation: accuracy {blend['val_accuracy']:.4f} ({alone} alone), macro F1 "
                   f"{blend['val_macro_f1']:.4f}, ECE {blend['ece']:.4f} (blend temperature {blend['temperature']:.3f})")
    else:
        typer.echo(f"validation: accuracy {m['val_accuracy']:.4f}, macro F1 {m['val_macro_f1']:.4f}, ECE "
                   f"{m['ece_before']:.4f} -> {m['ece_after']:.4f} after calibration (temperature "
                   f"{m['temperature']:.3f})")


@sentiment_app.command("analyze")
def analyze_command(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="CSV, TSV or .txt (one text a line); streamed, any size."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output CSV/TSV: the input's columns + label, probabilities, score (default: <input>_sentiment.csv)."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Text column (default: text, sentence, content, review ...)."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or directory (default: the active sentiment model)."),
    chart: Optional[Path] = typer.Option(None, "--chart", help="Where to save the distribution chart (default: beside the output, .png)."),
    no_chart: bool = typer.Option(False, "--no-chart", help="Do not draw the chart."),
    chunk_size: int = typer.Option(1000, "--chunk-size", min=1, help="Rows read, analyzed and written at a time."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per forward pass."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    encoding: str = typer.Option("utf-8", "--encoding"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON line instead of a table."),
) -> None:
    """Label every row of a file; print a summary per label and save a distribution chart."""
    from apps.sentiment.analyzer import SentimentAnalyzer
    from apps.sentiment.batch import analyze_file

    output = output or path.with_name(f"{path.stem}_sentiment.csv")
    if not path.is_file():  # before loading the model: a mistyped path should fail at once
        from appkit.errors import DataError

        raise DataError(f"{path}: no such file." if not path.exists() else f"{path}: is not a file.")
    analyzer = SentimentAnalyzer.open(model, settings=_settings(ctx), batch_size=batch_size, threads=threads)
    summary = analyze_file(analyzer, path, output, text_col=text_col, chart=False if no_chart else (chart or True),
                           chunk_size=chunk_size, encoding=encoding, progress=not as_json,
                           warn=lambda m: typer.echo(m, err=True))
    if as_json:
        typer.echo(json.dumps({"model": analyzer.name, **summary.as_dict()}))
        return
    _print_summary(summary, analyzer.name)


def _print_summary(summary: Any, model_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("label", "texts", "share", title=f"{summary.source.name}: {summary.analyzed:,} texts ({model_name})")
    total = summary.analyzed or 1
    for label in summary.labels:
        n = summary.counts[label]
        table.add_row(label, f"{n:,}", f"{100 * n / total:.1f}%")
    console = Console(highlight=False)
    console.print(table)
    notes = [f"{summary.texts_per_second:,.0f} texts/s"]
    if summary.mean_score is not None:
        notes.append(f"mean score {summary.mean_score:+.3f}")
    if summary.empty:
        notes.append(f"{summary.empty} empty rows left unlabelled")
    console.print("; ".join(notes))
    console.print(f"written: {summary.output}")
    if summary.chart:
        console.print(f"chart:   {summary.chart}")


@sentiment_app.command("eval")
def eval_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="A labelled test file the models have not seen."),
    model: Models = None,
    text_col: Optional[str] = typer.Option(None, "--text-col", help="The text column of the test file."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="The label column of the test file."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most this many texts (default: all)."),
    json_out: JsonOut = None,
) -> None:
    """Score models on a labelled file: accuracy, macro F1, calibration and confusions vs. the majority class."""
    from appkit.eval.cli import run_eval

    run_eval("sentiment", data=data, models=model, settings=_settings(ctx), json_out=json_out, text_col=text_col,
             label_col=label_col, limit=limit)


@sentiment_app.command("text")
def text_command(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="The text to analyze ('-' reads it from stdin)."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or directory (default: the active sentiment model)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Label one text and show each label's probability (also: appkit sentiment "TEXT")."""
    import warnings

    from apps.sentiment.analyzer import SentimentAnalyzer

    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        from appkit.errors import DataError

        raise DataError("the text is empty; nothing to analyze.")
    analyzer = SentimentAnalyzer.open(model, settings=_settings(ctx))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said below in the CLI's own words
        result = analyzer.analyze_one(text)
    if result.truncated:
        typer.echo(f"warning: the text is longer than the model's context of {analyzer.max_length} tokens; only its "
                   "start and end were read.", err=True)
    if as_json:
        typer.echo(json.dumps({"label": result.label, "probabilities": result.probabilities, "score": result.score,
                               "truncated": result.truncated, "model": analyzer.name}))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    head = Text(result.label, style="bold") + Text(f"  {result.confidence:.1%}")
    if result.score is not None:
        head += Text(f"  score {result.score:+.2f}", style="dim")
    console.print(head)
    for label in analyzer.labels:
        p = result.probabilities[label]
        console.print(Text(f"  {label:<12} {p:6.3f} ") + Text("█" * round(20 * p), style="cyan"))
