"""``appkit support retrain``: the command over apps/support/retrain.py, and its comparison table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from appkit.errors import AppkitError
from appkit.train.cli_options import BatchSize, Epochs, LearningRate, MaxMinutes, MaxSteps, Name, Preset, Seed

if TYPE_CHECKING:
    from apps.support.gate import RetrainResult


class PromotionRefused(AppkitError):
    """The candidate failed a gate: it stays a candidate and the active model stays active (exit code 3)."""

    exit_code = 3


def retrain_command(
    ctx: typer.Context,
    since: Optional[str] = typer.Option(None, "--since", help="Learn only from conversations started since then: "
                                        "30d, 2w, or a date (default: every stored conversation)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Train and compare, but promote nothing."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Judge this registered model instead of "
                                            "training one (it must share the active model's validation split)."),
    min_new: int = typer.Option(20, "--min-new", min=1, help="Refuse with fewer new conversations to learn from."),
    held_out: float = typer.Option(0.25, "--held-out", min=0.05, max=0.9,
                                   help="Share of the new conversations kept out of training to judge the candidate."),
    tolerance: float = typer.Option(0.01, "--tolerance", min=0.0, max=0.5,
                                    help="A quality gate passes at the active model's figure less this."),
    limit: int = typer.Option(300, "--limit", min=1, help="Held-out exchanges scored per set."),
    crows: Optional[Path] = typer.Option(None, "--crows", help="CrowS-Pairs CSV for the audit's language-model gate."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Train a new model (--preset) instead of "
                                      "fine-tuning the active one."),
    name: Name = None,
    preset: Preset = "auto",
    max_minutes: MaxMinutes = 10.0,
    max_steps: MaxSteps = None,
    epochs: Epochs = 10.0,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    seed: Seed = 0,
) -> None:
    """Learn from agents' answers and good-rated replies; promote the new model only if it is no worse on every gate."""
    from datetime import datetime, timezone

    from appkit.config import settings_from
    from appkit.insights.period import parse_moment
    from appkit.train.cli_options import training_options
    from apps.support.retrain import RetrainOptions, retrain

    settings = settings_from(ctx)
    if crows is not None and not crows.is_file():
        raise AppkitError(f"--crows {crows}: no such file.")
    options = RetrainOptions(
        since=parse_moment(since, "--since", datetime.now(timezone.utc)) if since else None, min_new=min_new,
        held_out=held_out, tolerance=tolerance, limit=limit, crows=crows, dry_run=dry_run, candidate=candidate,
        name=name, from_scratch=from_scratch, seed=seed)
    training = training_options(settings, preset=preset, max_minutes=max_minutes, max_steps=max_steps, epochs=epochs,
                                batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    result = retrain(settings, options, training, log=typer.echo)
    print_result(result)
    if not result.passed:
        failed = "; ".join(g.name for g in result.gates if not g.passed)
        raise PromotionRefused(f"{result.candidate} was not promoted: it is worse than {result.active} on: {failed}. "
                               f"It stays a candidate; {result.active} stays active.")


def print_result(result: RetrainResult) -> None:
    """The gates as a table: active vs candidate, and the verdict."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("gate", result.active + " (active)", result.candidate + " (candidate)", "",
                  title=Text("candidate vs active model, same held-out exchanges", style="bold"), title_justify="left")
    for g in result.gates:
        verdict = Text("pass", style="green") if g.passed else Text("FAIL", style="bold red")
        table.add_row(g.name, _fmt(g.active), _fmt(g.candidate), verdict)
    extra = [("held-out history: validation perplexity", "history", "perplexity"),
             ("held-out history: answered, not handed over", "history", "answered")]
    if any("intent accuracy" in g.name for g in result.gates):
        extra.append(("held-out history: ROUGE-L", "history", "rouge_l"))
    for label, set_name, metric in extra:
        table.add_row(Text(f"{label} (shown, not gated)", style="dim"), _fmt(result.scores[result.active][set_name]
                      .get(metric)), _fmt(result.scores[result.candidate][set_name].get(metric)), "")
    console = Console(highlight=False)
    console.print(table)
    data = result.data
    console.print(Text(f"learned from {data.get('new_train', 0)} new conversations ({data.get('agent_answers', 0)} "
                       f"agents' answers, {data.get('good_replies', 0)} replies rated good in all), "
                       f"{data.get('new_held_out', 0)} held out to judge."))
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"))
    if result.promoted:
        console.print(Text(f"{result.candidate} is now the active support model "
                           f"(`appkit models rollback --app support` undoes this).", style="bold green"))
    elif result.dry_run:
        verdict = "would be promoted" if result.passed else "would not be promoted"
        console.print(Text(f"--dry-run: {result.candidate} {verdict}; it stays a candidate "
                           f"(`appkit models promote {result.candidate}` to use it anyway).", style="bold"))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
