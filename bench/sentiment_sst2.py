"""Sentiment on SST-2: appkit's self-trained classifier vs. the VADER and TextBlob lexicons.

1. Train ``appkit sentiment train``'s classifier (the same code path) on SST-2's train.tsv
   (67,349 phrases and sentences) under a CPU time budget, or take a trained one (--model).
2. Score SST-2's dev.tsv (872 sentences, never trained or validated on) with all three systems:
   appkit (argmax of the calibrated probabilities), VADER (compound >= 0 -> positive) and
   TextBlob's PatternAnalyzer (polarity >= 0 -> positive), on exactly the same sentences.
   When appkit's model blends its encoder with other models (word n-grams, a word BiLSTM),
   each member is also scored alone (same sentences), and the blend without the encoder, so
   each part's gain is measured, not assumed.
3. Calibration on dev: expected calibration error of appkit's probabilities before and after
   the last temperature scaling (the blend's, or the encoder's without a blend; fitted on
   appkit's own validation split, not on dev).
4. Throughput on CPU: texts/s of each system over the dev sentences repeated to --speed-texts,
   after a warm-up; appkit batched (sorted-by-length batches of --batch-size), the lexicons one
   text at a time (that is their API). Plus appkit's latency for a single text.

    python bench/sentiment_sst2.py                          # trains ~15 min on 2 CPU cores
    python bench/sentiment_sst2.py --model sst2-bench --home ~/.appkit   # evaluate a trained one

Needs the `bench` extra (pip install -e ".[bench]": vaderSentiment, textblob). Prints a table,
then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from common import REPO, code_version  # bench/ is on sys.path when a script runs

SST2 = REPO.parent / "shared" / "data" / "sentiment" / "sst2"
LABELS = {"0": "negative", "1": "positive"}


def read_dev(path: Path) -> tuple[list[str], list[str]]:
    """SST-2 dev: (sentences, labels as negative/positive)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        text_i = next(i for i, c in enumerate(header) if c in ("content", "sentence"))
        rows = [(r[text_i], LABELS[r[header.index("label")]]) for r in reader if r]
    return [t for t, _ in rows], [y for _, y in rows]


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        print(f"error: {path} not found ({what}); pass its path (see --help).", file=sys.stderr)
        sys.exit(2)
    return path


def throughput(predict: Callable[[list[str]], Any], texts: list[str], n: int) -> float:
    """texts/s of ``predict`` over ``texts`` cycled to ``n`` texts, after a 64-text warm-up."""
    batch = (texts * math.ceil(n / len(texts)))[:n]
    predict(texts[:64])
    started = time.perf_counter()
    predict(batch)
    return n / (time.perf_counter() - started)


def lexicons() -> dict[str, Callable[[list[str]], list[str]]]:
    """VADER and TextBlob as text -> negative/positive, with the usual >= 0 cut."""
    try:
        from textblob import TextBlob
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as e:
        print(f"error: {e.name} is not installed; pip install -e '.[bench]'", file=sys.stderr)
        sys.exit(2)
    vader = SentimentIntensityAnalyzer()
    return {
        "VADER": lambda texts: ["positive" if vader.polarity_scores(t)["compound"] >= 0 else "negative" for t in texts],
        "TextBlob": lambda texts: ["positive" if TextBlob(t).sentiment.polarity >= 0 else "negative" for t in texts],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, default=SST2 / "train.tsv")
    p.add_argument("--dev", type=Path, default=SST2 / "dev.tsv")
    p.add_argument("--max-minutes", type=float, default=15.0, help="training budget")
    p.add_argument("--epochs", type=float, default=None, help="upper bound on passes (default: the CLI's)")
    p.add_argument("--model", default=None, help="evaluate this trained model (name or directory) instead of training")
    p.add_argument("--home", type=Path, default=None, help="APPKIT_HOME to train into / find --model in (default: a temporary one)")
    p.add_argument("--name", default="sst2-bench")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--batch-size", type=int, default=64, help="appkit inference batch size")
    p.add_argument("--speed-texts", type=int, default=4000, help="texts timed per system")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    from appkit.config import load_settings
    from apps.sentiment.analyzer import SentimentAnalyzer
    from apps.sentiment.calibration import expected_calibration_error

    if args.threads:
        torch.set_num_threads(args.threads)
    texts, gold = read_dev(_need(args.dev, "SST-2 dev"))
    home = args.home or Path(tempfile.mkdtemp(prefix="appkit-sst2-"))
    settings = load_settings(home=home, device="cpu", database_url=f"sqlite:///{home / 'appkit.db'}")
    trained: dict[str, Any] = {}
    if args.model is None:
        from apps.sentiment.train import SentimentOptions, train_sentiment

        options = SentimentOptions(max_minutes=args.max_minutes, seed=args.seed, threads=args.threads)
        if args.epochs:
            options.epochs = args.epochs
        started = time.perf_counter()
        result = train_sentiment(_need(args.train, "SST-2 train"), name=args.name, options=options, settings=settings,
                                 replace=True, log=lambda m: print(m, file=sys.stderr, flush=True))
        trained = {"wall_minutes": round((time.perf_counter() - started) / 60, 2), **result.metrics}
    analyzer = SentimentAnalyzer.open(args.model or args.name, settings=settings, batch_size=args.batch_size,
                                      device="cpu")
    meta = analyzer.metadata

    results = analyzer.analyze(texts)
    y = [analyzer.labels.index(g) for g in gold]
    calibrated = [[r.probabilities[label] for label in analyzer.labels] for r in results]
    t = analyzer.blend_temperature if analyzer.members else float(meta.get("temperature", 1.0))
    raw = torch.tensor(calibrated).clamp_min(1e-12).log().mul(t).softmax(-1).tolist()  # undo the last temperature
    appkit_row = {
        "accuracy": accuracy([r.label for r in results], gold),
        "texts_per_second": throughput(lambda b: analyzer.analyze(b, warn=False), texts, args.speed_texts),
        "ece_before": expected_calibration_error(raw, y), "ece_after": expected_calibration_error(calibrated, y),
    }
    one = []
    for text in texts[:50]:
        started = time.perf_counter()
        analyzer.analyze_one(text)
        one.append(time.perf_counter() - started)
    appkit_row["single_text_ms"] = statistics.median(one) * 1e3

    rows: dict[str, dict[str, Any]] = {"appkit": appkit_row}
    if analyzer.members:
        from apps.sentiment.blend import MEMBER_TITLES

        encoder = SentimentAnalyzer.load(analyzer.path, device="cpu", batch_size=args.batch_size, blend=False)
        rows["appkit encoder alone"] = {"accuracy": accuracy([r.label for r in encoder.analyze(texts)], gold)}
        member_log_probs = [member.log_probabilities(texts) for member in analyzer.members]
        for name, log_probs in zip(analyzer.member_names, member_log_probs):
            predicted = log_probs.argmax(axis=1)
            rows[f"appkit {MEMBER_TITLES[name]} alone"] = {"accuracy": accuracy([analyzer.labels[i] for i in predicted], gold)}
        if len(member_log_probs) > 1:  # does the encoder earn its place? the blend of the others, without it
            predicted = sum(member_log_probs).argmax(axis=1)
            rows["appkit blend without its encoder"] = {
                "accuracy": accuracy([analyzer.labels[i] for i in predicted], gold)}
    for name, predict in lexicons().items():
        predicted = predict(texts)
        rows[name] = {"accuracy": accuracy(predicted, gold),
                      "texts_per_second": throughput(predict, texts, args.speed_texts)}
    res = {
        "bench": "sentiment_sst2", "code": code_version(), "device": "cpu", "threads": torch.get_num_threads(),
        "dev": str(args.dev), "dev_texts": len(texts), "model": analyzer.name, "architecture": meta.get("architecture"),
        "parameters": analyzer.describe()["parameters"], "blend": analyzer.describe()["blend"], "temperature": t,
        "val_accuracy": meta.get("metrics", {}).get("val_accuracy"), "training": trained,
        "systems": {k: {m: round(v, 4) for m, v in r.items()} for k, r in rows.items()},
    }
    print_table(res)
    print(json.dumps(res))


def accuracy(predicted: list[str], gold: list[str]) -> float:
    return sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from apps.sentiment.blend import MEMBER_TITLES

    console = Console(width=120)
    table = Table(title=f"SST-2 dev ({res['dev_texts']} sentences), CPU, {res['threads']} threads")
    for col in ("system", "accuracy", "texts/s", "ECE before -> after calibration"):
        table.add_column(col, justify="left" if col == "system" else "right")
    for name, r in res["systems"].items():
        ece = f"{r['ece_before']:.4f} -> {r['ece_after']:.4f}" if "ece_after" in r else "-"
        members = "".join(f" + {MEMBER_TITLES[m]}" for m in res["blend"][1:])
        label = f"appkit {res['architecture']}{members} ({res['parameters'] / 1e6:.1f}M)" if name == "appkit" else name
        speed = f"{r['texts_per_second']:,.0f}" if "texts_per_second" in r else "-"
        table.add_row(label, f"{r['accuracy']:.2%}", speed, ece)
    console.print(table)
    tr = res["training"]
    if tr:
        console.print(f"  training: {tr['train_minutes']:.1f} min in the loop ({tr['wall_minutes']:.1f} min wall, incl. "
                      f"tokenizer, calibration, save), {tr['steps']} steps, {tr['stopped']}; validation accuracy "
                      f"{tr['val_accuracy']:.4f}; temperature {tr['temperature']:.3f}")
    console.print(f"  appkit single text: {res['systems']['appkit']['single_text_ms']:.1f} ms (median of 50)")


if __name__ == "__main__":
    main()
