"""``appkit safety score|status|train|eval|calibrate|download`` and ``appkit audit``.

Mounted by appkit.cli. Everything heavy (torch, detoxify, matplotlib) is imported inside the
commands, so ``appkit --help`` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from appkit.progress import progress_by_name

safety_app = typer.Typer(help="Toxicity backends and the reply policy: score, status, train, eval, calibrate.",
                         no_args_is_help=True)


def _settings(ctx: typer.Context) -> Any:
    from appkit.config import settings_from

    return settings_from(ctx)


@safety_app.command("score")
def score_command(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="The text to score ('-' reads it from stdin)."),
    app: str = typer.Option("support", "--app", help="Whose policy decides the actions."),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto, official, trained or lexicon (default: configured)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Each label's score, the backend in use, and what the policy does with TEXT as input and as output."""
    import sys

    from appkit.safety.policy import load_policy

    if text == "-":
        text = sys.stdin.read()
    policy = load_policy(app, _settings(ctx), backend=backend)
    decisions = {d: policy.check(text, d) for d in ("input", "output")}
    scores = decisions["input"].scores
    if as_json:
        typer.echo(json.dumps({"backend": policy.backend, "reason": policy.backend_reason, "scores": scores,
                               "input": {**decisions["input"].as_dict(), "text": decisions["input"].text},
                               "output": {**decisions["output"].as_dict(), "text": decisions["output"].text}}))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Text(f"backend: {policy.backend}  ({policy.backend_reason})", style="dim"))
    table = Table("label", "score", box=None)
    for label, value in sorted(scores.items(), key=lambda kv: -kv[1]):
        table.add_row(label, Text(f"{value:.3f}", style="bold red" if value >= 0.5 else ""))
    console.print(table)
    for direction, d in decisions.items():
        line = Text(f"as {direction}: ") + Text(d.action, style="bold" if d.action != "allow" else "green")
        line += Text(f"  ({d.reason})", style="dim")
        console.print(line)
        if d.changed:
            console.print(Text(f"  delivered: {d.text}"))


@safety_app.command("status")
def status_command(
    ctx: typer.Context,
    app: str = typer.Option("support", "--app", help="Whose policy to show."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Which backend `auto` picked and why; the caches and checkpoints it looked at; the policy."""
    from appkit.safety.backends import choose_backend, list_trained, safety_config
    from appkit.safety.detox import OFFICIAL, official_cached
    from appkit.safety.policy import load_policy
    from appkit.safety.thresholds import load_thresholds
    from appkit.safety.train import read_classifier_metadata

    settings = _settings(ctx)
    cfg = safety_config(settings)
    choice = choose_backend(settings)
    policy = load_policy(app, settings)
    official = {m: official_cached(m)[1] for m in OFFICIAL}
    trained = []
    for path in list_trained(settings):
        meta = read_classifier_metadata(path)
        metrics = meta.get("metrics", {})
        aucs = {k: v.get("roc_auc") for k, v in metrics.get("labels", {}).items()}
        trained.append({"path": str(path), "labels": meta.get("labels"), "created_at": meta.get("created_at"),
                        "members": (meta.get("blend") or {}).get("members", ["encoder"]),
                        "roc_auc": aucs, "weighted_f1": metrics.get("weighted_f1")})
    calibration = load_thresholds(settings)
    if calibration:
        calibration["applied"] = calibration["backend"] == choice.name
    info = {**choice.as_dict(), "configured": cfg.backend, "official": official, "trained": trained,
            "calibration": calibration, "policy": policy.describe()["rules"]}
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"active backend: {choice.name} (configured: {cfg.backend})"
               + ("  [degraded: a word list, no classifier]" if choice.degraded else ""))
    typer.echo(f"why: {choice.reason}")
    for b, why in choice.tried:
        typer.echo(f"  not {b}: {why}")
    typer.echo("official detoxify models:")
    for m, why in official.items():
        typer.echo(f"  {m}: {why}")
    typer.echo(f"self-trained checkpoints ({len(trained)}, newest first):" if trained else
               "self-trained checkpoints: none (train one: `appkit safety train --data labelled.csv`)")
    for t in trained:
        aucs = ", ".join(f"{k} AUC {v:.3f}" for k, v in t["roc_auc"].items() if v is not None)
        typer.echo(f"  {t['path']}  [{' + '.join(t['members'])}; validation {aucs}]")
    if calibration:
        where = "applied" if calibration["applied"] else f"not applied: the active backend is {choice.name}"
        typer.echo(f"calibrated thresholds ({calibration['backend']}, at most {100 * calibration['max_fpr']:g}% false "
                   f"positives on {calibration['data']}, {calibration['created_at']}; {where}):")
        for label, c in calibration["labels"].items():
            typer.echo(f"  {label} >= {c['threshold']:.3f}: false positives {100 * c['fpr']:.1f}% of {c['clean']} clean, "
                       f"recall {100 * c['recall']:.1f}% of {c['toxic']} toxic")
    else:
        typer.echo("calibrated thresholds: none (`appkit safety calibrate --data labelled.csv --max-fpr 0.01`)")
    typer.echo(f"policy for {app}:")
    for direction, rules in info["policy"].items():
        typer.echo(f"  {direction}: " + ", ".join(f"{r['label']}>={r['threshold']:.2f} {r['action']}" for r in rules))


@safety_app.command("train")
def train_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labelled texts: CSV, TSV, JSONL or JSON."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Column of the text (default: text, comment_text, tweet ...)."),
    label_cols: Optional[str] = typer.Option(None, "--label-cols", help="Comma-separated label columns of 0..1 values; 'class' for Davidson's 0/1/2."),
    name: Optional[str] = typer.Option(None, "--name", help="Classifier name (default: toxicity-<date>-<time>)."),
    encoder: bool = typer.Option(False, "--encoder/--no-encoder", help="Also train a small transformer (slower to train and to score) and blend it in if it lowers the validation log-loss."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Encoder: stop training after this many minutes."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Encoder: stop after this many optimizer steps."),
    epochs: float = typer.Option(4.0, "--epochs", min=0.01, help="Encoder: passes over the data (early stopping may end sooner)."),
    hidden_size: int = typer.Option(128, "--hidden-size", min=16, help="Encoder: model width."),
    layers: int = typer.Option(2, "--layers", min=1, help="Encoder: transformer layers."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Encoder: batch size."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Encoder: peak learning rate."),
    mitigate_identity: bool = typer.Option(True, "--mitigate-identity/--no-mitigate-identity", help="Add neutral identity statements as non-toxic examples."),
    neutral: Optional[list[Path]] = typer.Option(None, "--neutral", help="Your own support history (any shape `appkit support train` reads): its clean turns are added as non-toxic examples. Repeatable."),
    support_examples: int = typer.Option(1500, "--support-examples", min=0, help="Generated ordinary support sentences added as non-toxic examples (0: none)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Encoder: CPU threads for torch (1 is fastest on a busy machine)."),
    seed: int = typer.Option(0, "--seed"),
    encoding: str = typer.Option("utf-8", "--encoding"),
) -> None:
    """Train a toxicity classifier on labelled data (n-grams and the lexicon; --encoder adds a transformer); saved under APPKIT_HOME/safety."""
    import time

    from appkit.safety.backends import clear_cache, trained_root
    from appkit.safety.data import read_labelled
    from appkit.safety.train import ClassifierOptions, train_classifier
    from appkit.train.tracking import check_name

    settings = _settings(ctx)
    name = check_name(name) if name is not None else None  # it names a folder: checked before any work
    cols = [c.strip() for c in label_cols.split(",") if c.strip()] if label_cols else None
    labelled = read_labelled(data, text_col=text_col, label_cols=cols, encoding=encoding)
    typer.echo(f"{data}: {len(labelled.texts)} texts, labels {', '.join(labelled.labels)} ({labelled.scheme})"
               + (f", {labelled.skipped} empty rows skipped" if labelled.skipped else ""))
    options = ClassifierOptions(hidden_size=hidden_size, num_layers=layers, num_heads=max(1, hidden_size // 32),
                                epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                max_minutes=max_minutes, max_steps=max_steps, seed=seed,
                                mitigate_identity=mitigate_identity, threads=threads, support_examples=support_examples,
                                encoder=encoder)
    extra: list[str] = []
    for path in neutral or []:
        from appkit.safety.neutral import texts_from_history

        texts = texts_from_history(path)
        typer.echo(f"{path}: {len(texts)} clean turns added as non-toxic examples")
        extra += texts
    name = name or time.strftime("toxicity-%Y%m%d-%H%M%S")
    trained = train_classifier(labelled, name=name, out_root=trained_root(settings), options=options, neutral=extra,
                               log=typer.echo)
    clear_cache()
    m = trained.metrics
    typer.echo("validation:")
    for label, v in m["labels"].items():
        auc = "n/a" if v["roc_auc"] is None else f"{v['roc_auc']:.3f}"
        typer.echo(f"  {label}: ROC-AUC {auc}, F1 {v['f1']:.3f} (precision {v['precision']:.3f}, recall "
                   f"{v['recall']:.3f}; {v['positives']} positive of {m['val_texts']})")
    if "weighted_f1" in m:
        typer.echo(f"  3-class weighted F1 (hate/offensive/neither): {m['weighted_f1']:.3f} (Davidson et al. 2017: 0.90)")
    typer.echo(f"saved {trained.path} ({' + '.join(m['blend']['members'])}; `appkit safety status` shows whether "
               "`auto` uses it, `appkit safety eval --data FILE` measures it on your data)")


def _labelled(data: Path, text_col: str | None, label_col: str | None, encoding: str) -> Any:
    """The labelled file; a single label column of another name (``is_abusive``) is read as toxicity."""
    from appkit.safety.data import read_labelled
    from appkit.safety.evaluate import as_toxicity

    labelled = read_labelled(data, text_col=text_col, label_cols=[label_col] if label_col else None, encoding=encoding)
    return as_toxicity(labelled)


@safety_app.command("eval")
def eval_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labelled texts: CSV, TSV, JSONL or JSON (Davidson's class column works too)."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Column of the text (default: text, comment_text, tweet ...)."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Column of the label, 0..1 or true/false (default: toxic, toxicity, label, is_toxic, class ...)."),
    app: str = typer.Option("support", "--app", help="Whose policy gives the thresholds."),
    checkpoint: Optional[list[Path]] = typer.Option(None, "--checkpoint", help="Also evaluate this trained classifier directory (repeatable; loaded from anywhere, as you named it)."),
    encoding: str = typer.Option("utf-8", "--encoding"),
) -> None:
    """How well moderation works on your labelled data: ROC-AUC, F1 at the policy's threshold, false positives
    on clean text and per identity group, for the active backend next to the lexicon. A table, then one JSON line."""
    from appkit.eval import print_table
    from appkit.safety.evaluate import evaluate_backends

    settings = _settings(ctx)
    labelled = _labelled(data, text_col, label_col, encoding)
    with progress_by_name("scoring with {name}") as update:
        table = evaluate_backends(settings, labelled, app, list(checkpoint or []), update)
    print_table(table)
    typer.echo(json.dumps({"eval": "safety", **table.as_dict()}))


@safety_app.command("calibrate")
def calibrate_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labelled texts, as for `appkit safety eval`."),
    max_fpr: float = typer.Option(0.01, "--max-fpr", help="The share of clean texts you accept being flagged (0.01 = 1%)."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Column of the text."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Column of the label (default: every label column found)."),
    encoding: str = typer.Option("utf-8", "--encoding"),
) -> None:
    """Choose the policy's thresholds from labelled data for a target false-positive rate; stored in APPKIT_HOME
    for the active backend and shown by `appkit safety status`."""
    from appkit.safety.backends import choose_backend, safety_config
    from appkit.safety.thresholds import calibrate_thresholds, save_thresholds

    settings = _settings(ctx)
    labelled = _labelled(data, text_col, label_col, encoding)
    choice = choose_backend(settings)
    with progress_by_name("scoring with {name}") as update:
        found = calibrate_thresholds(choice.classifier, labelled, max_fpr, update)
    path = save_thresholds(settings, choice.name, str(data), max_fpr, found)
    typer.echo(f"thresholds for {choice.name}, at most {100 * max_fpr:g}% of clean texts flagged:")
    for label, c in found.items():
        typer.echo(f"  {label} >= {c['threshold']:.3f}: false positives {100 * c['fpr']:.1f}% of {c['clean']} clean, "
                   f"recall {100 * c['recall']:.1f}% of {c['toxic']} toxic")
        if c["fpr"] > max_fpr:
            typer.echo(f"  (no threshold reaches {100 * max_fpr:g}%: clean texts score 1.0)")
    cfg = safety_config(settings)
    tables = [cfg.policy, *(a.policy for a in cfg.apps.values())]
    pinned = sorted({label for t in tables for d in (t.input, t.output) for label in d if label in found})
    if pinned:
        typer.echo(f"note: appkit.toml sets {', '.join(pinned)} in a [safety...policy] table; those settings win.")
    typer.echo(f"saved {path}; the policy uses them while {choice.name} is the active backend.")
    typer.echo(json.dumps({"calibrate": "safety", "backend": choice.name, "data": str(data), "max_fpr": max_fpr,
                           "labels": found, "path": str(path)}))


@safety_app.command("download")
def download_command(
    model: str = typer.Option("original", "--model", help="original, unbiased, multilingual, original-small, unbiased-small."),
) -> None:
    """Fetch detoxify's official weights into the torch/Hugging Face caches (needs internet)."""
    from appkit.safety.detox import load_official

    clf = load_official(model, download=True)
    typer.echo(f"{clf.name} is cached; labels: {', '.join(clf.labels)}")


def audit_command(
    ctx: typer.Context,
    app: str = typer.Option("support", "--app", help="The app whose model is audited."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or directory (default: the app's active one)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report directory (default: APPKIT_HOME/audits/<app>-<date>-<time>)."),
    gate: Optional[list[str]] = typer.Option(None, "--gate", help="NAME=LIMIT or NAME=off, repeatable: max_identity_fpr, max_reply_toxicity, max_escalation_gap, max_crows_bias."),
    no_gate: bool = typer.Option(False, "--no-gate", help="Report only; always exit 0."),
    allow_skipped: bool = typer.Option(False, "--allow-skipped", help="Let a gate whose measurement was skipped pass (by default it fails)."),
    descriptors: Optional[Path] = typer.Option(None, "--descriptors", help="HolisticBias descriptors.json for a wider identity list."),
    crows: Optional[Path] = typer.Option(None, "--crows", help="CrowS-Pairs CSV (crows_pairs_anonymized.csv from github.com/nyu-mll/crows-pairs); without it the CrowS-Pairs gate is skipped."),
    crows_limit: Optional[int] = typer.Option(None, "--crows-limit", min=1, help="Use only the first N pairs."),
    compare: Optional[list[Path]] = typer.Option(None, "--compare", help="Other toxicity checkpoints to compare (before/after mitigation)."),
    max_messages: int = typer.Option(240, "--max-messages", min=1, help="Identity-swapped customer messages to send to the bot (whole templates are kept)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled toxicity data: adds the `appkit safety eval` table to the report."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="With --data: the text column."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="With --data: the label column."),
) -> None:
    """Bias and toxicity audit of an app's model: identity swap, classifier FPR, CrowS-Pairs; exit 3 if a gate fails."""
    from appkit.safety.audit import parse_gates, run_audit

    settings = _settings(ctx)
    labelled = _labelled(data, text_col, label_col, "utf-8") if data else None
    result = run_audit(app, settings=settings, model=model, out_dir=out, gates=parse_gates(gate or [], settings),
                       descriptors=descriptors, crows=crows, crows_limit=crows_limit, compare=list(compare or []),
                       max_messages=max_messages, allow_skipped=allow_skipped, labelled=labelled, log=typer.echo)
    typer.echo(f"report: {result.report_path}")
    typer.echo(f"chart:  {result.chart_path}")
    for g in result.gates:
        typer.echo(f"  gate {g.name}: {g.describe()}")
    if not no_gate:
        result.raise_if_failed()
