"""Support replies on held-out customer messages: appkit's reply modes against retrieval baselines.

For each history (Bitext, Taskmaster-4 coffee by default) the bench splits off a held-out set
first, trains appkit's support bot on the rest exactly as ``appkit train-support`` does (tiny
preset, a --minutes budget), then answers every held-out customer message with:

- appkit grounded (the default mode), generate and select;
- appkit's grounding pipeline without the model's part (the same candidates, groups and router,
  weighted without the model's own reply or scores): what the model adds is the difference;
- TF-IDF nearest reply over word 1-2-grams and over character 3-5-grams, BM25 (rank-bm25);
- ChatterBot (in its own virtualenv, ``--chatterbot-python``; offline it runs with
  ``tagger=LowercaseTagger``), skipped with a note when none is given.

Held-out sets. Bitext: --per-intent customer messages per intent whose wording (lowercase,
digits and punctuation ignored) appears nowhere in training; every training row with that
wording is dropped too. Taskmaster (every data_*.json of the folder): --held-out-fraction of the dialogues, whole;
each agent turn is one exchange (the conversation so far, the customer's message, the agent's
real reply), at most --limit of them spread evenly over the held-out dialogues.

Columns: intent accuracy (judge: TF-IDF + logistic regression trained on the training replies
and their intents, as ``appkit eval`` does; Bitext only, Taskmaster has no intents), corpus BLEU
and mean ROUGE-L F1 against the agent's real reply, raw placeholders shown ([ORDER_ID],
{{Order Number}} ...), handoffs, reply latency p50/p95 (one reply at a time), training minutes
(for baselines: fitting). A table, then one JSON line last. The judge is imperfect: the notes
give its accuracy on the agents' own held-out replies, the most a new reply can be expected to
reach (a past reply it was trained on can score higher).

    python bench/support.py                                   # both histories, 10 minutes each
    python bench/support.py --datasets bitext --minutes 10 --chatterbot-python /tmp/cbvenv/bin/python
    python bench/support.py --home DIR --reuse                # evaluate models trained by an earlier run

Needs ``pip install -e ".[bench]"`` (rank-bm25).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import REPO, code_version  # bench/ is on sys.path when a script runs

SHARED = REPO.parent / "shared" / "data" / "support"
DATASETS = {"bitext": SHARED / "bitext_llm_4.5k" / "Bitext_Sample_Customer_Support_Training_Dataset.csv",
            "taskmaster": SHARED / "taskmaster4_coffee"}
RAW_PLACEHOLDER = re.compile(r"\{\{[^{}]{1,40}\}\}|\[[A-Z][A-Z0-9_]{1,30}\]")
CHATTERBOT = Path(__file__).with_name("support_chatterbot.py")


@dataclass(frozen=True)
class Exchange:
    """A held-out customer message, the conversation before it and the agent's real reply."""

    context: list[dict[str, str]]
    message: str
    reference: str
    intent: str | None


@dataclass
class Split:
    name: str
    train_file: Path  # what appkit trains on (the held-out rows removed)
    pairs: list[tuple[str, str, str | None]]  # training (customer message, agent reply, intent) for the baselines
    held_out: list[Exchange]


@dataclass
class Row:
    system: str
    answers: list[str]
    latencies: list[float]
    train_minutes: float
    handoffs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# -- held-out splits --------------------------------------------------------------------------

def wording(text: str) -> str:
    """A message's wording: case, digits and punctuation ignored."""
    return " ".join(re.sub(r"\d+", "0", text.lower()).translate(str.maketrans("", "", ",.?!;:'\"")).split())


def split_bitext(path: Path, out_dir: Path, per_intent: int, seed: int) -> Split:
    import csv

    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    rng = random.Random(seed)
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_intent[r["intent"]].append(i)
    held: list[int] = []
    for intent in sorted(by_intent):
        candidates = by_intent[intent][:]
        rng.shuffle(candidates)
        seen: set[str] = set()
        for i in candidates:  # distinct wordings within the held-out set too
            w = wording(rows[i]["instruction"])
            if w not in seen:
                seen.add(w)
                held.append(i)
            if len(seen) == per_intent:
                break
    held_words = {wording(rows[i]["instruction"]) for i in held}
    train = [r for r in rows if wording(r["instruction"]) not in held_words]
    train_file = out_dir / "bitext-train.csv"
    with train_file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(train)
    return Split("bitext", train_file, [(r["instruction"], r["response"], r["intent"]) for r in train],
                 [Exchange([], rows[i]["instruction"], rows[i]["response"], rows[i]["intent"]) for i in held])


def split_taskmaster(path: Path, out_dir: Path, fraction: float, seed: int, limit: int) -> Split:
    from appkit.data import read_history

    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    raw = [d for f in files for d in json.loads(f.read_text(encoding="utf-8"))]
    ids = sorted(d["conversation_id"] for d in raw)
    random.Random(seed).shuffle(ids)
    held_ids = set(ids[: max(1, round(len(ids) * fraction))])
    train_file = out_dir / "taskmaster-train.json"
    train_file.write_text(json.dumps([d for d in raw if d["conversation_id"] not in held_ids]), encoding="utf-8")
    held_file = out_dir / "taskmaster-held.json"
    held_file.write_text(json.dumps([d for d in raw if d["conversation_id"] in held_ids]), encoding="utf-8")
    pairs: list[tuple[str, str, str | None]] = []
    for conv in read_history(train_file):
        msgs = [m for m in conv.as_messages() if m["role"] != "system"]
        pairs += [(a["content"], b["content"], None) for a, b in zip(msgs, msgs[1:])
                  if a["role"] == "user" and b["role"] == "assistant"]
    held: list[Exchange] = []
    for conv in read_history(held_file):
        msgs = [m for m in conv.as_messages() if m["role"] != "system"]
        held += [Exchange(msgs[:i - 1], msgs[i - 1]["content"], msgs[i]["content"], None)
                 for i in range(1, len(msgs)) if msgs[i]["role"] == "assistant" and msgs[i - 1]["role"] == "user"]
    if len(held) > limit:  # evenly over the held-out dialogues, early and late turns alike
        held = [held[int(i * len(held) / limit)] for i in range(limit)]
    return Split("taskmaster", train_file, pairs, held)


# -- appkit ----------------------------------------------------------------------------------

def train_appkit(split: Split, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train the support bot on the split's training file as `appkit train-support` does: the
    training loop's minutes (the budget), the whole command's minutes (reading, curation and the
    grounding fit after the loop), steps and validation loss."""
    from appkit.config import load_settings
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.train import train_support

    options = ChatTrainingOptions(preset=args.preset, max_minutes=args.minutes, max_steps=args.max_steps,
                                  seed=args.seed, device=args.device)
    start = time.perf_counter()
    trained = train_support(split.train_file, name=split.name, options=options, settings=load_settings(home=home),
                            replace=True, log=lambda line: print(f"  {line}", file=sys.stderr))
    m = trained.metrics
    return {"train_minutes": round(m["seconds"] / 60, 2), "command_minutes": round((time.perf_counter() - start) / 60, 2),
            "steps": m["steps"], "epochs": m["epochs"], "best_val_loss": m["best_val_loss"],
            "compile": m.get("compile_note", "")}


def run_appkit(split: Split, home: Path, train_minutes: float, args: argparse.Namespace) -> list[Row]:
    from appkit.config import load_settings
    from apps.support.bot import SupportBot
    from apps.support.placeholders import Known, customer_texts, fill_placeholders
    from apps.support.replies import model_view, reply_params

    bot = SupportBot.open(model=split.name, settings=load_settings(home=home), policy=None)
    params = reply_params(max_new_tokens=args.max_new_tokens)  # as the bot answers by default
    rows = []
    try:
        bot.reply("hello", [], params)  # warm-up: first-call allocations are not a customer's latency
        for mode in ("grounded", "generate", "select"):
            row = Row(f"appkit {mode}", [], [], train_minutes)
            for e in progress(split.held_out, f"{split.name}: appkit {mode}"):
                t = time.perf_counter()
                reply = bot.reply(e.message, e.context, params, mode=mode)
                row.latencies.append(time.perf_counter() - t)
                row.answers.append(reply.text)
                row.handoffs += reply.escalated
            rows.append(row)
        # The same pipeline without the model's part: candidates, groups and router, ranked on
        # retrieval evidence alone (weights fitted the same way, on the same validation exchanges).
        grounder = bot.replier.grounder
        row = Row("appkit grounding without the model", [], [], train_minutes)
        for e in progress(split.held_out, f"{split.name}: grounding without the model"):
            t = time.perf_counter()
            history = [*e.context, {"role": "user", "content": e.message}]
            ranked = grounder.rank(grounder.gather(model_view(history)), "retrieval")
            known = Known.gather(customer_texts(history), bot.replier.facts, bot.replier.company)
            row.answers.append(fill_placeholders(ranked[0].text, known, bot.prompts).text if ranked else "")
            row.latencies.append(time.perf_counter() - t)
        rows.append(row)
    finally:
        bot.close()
    return rows


# -- retrieval baselines ---------------------------------------------------------------------

def nearest_reply(name: str, split: Split, fit: Callable[[list[str]], Callable[[str], int]]) -> Row:
    start = time.perf_counter()
    lookup = fit([q for q, _, _ in split.pairs])
    row = Row(name, [], [], (time.perf_counter() - start) / 60)
    for e in split.held_out:
        t = time.perf_counter()
        row.answers.append(split.pairs[lookup(e.message)][1])
        row.latencies.append(time.perf_counter() - t)
    return row


def tfidf(**vectorizer: Any) -> Callable[[list[str]], Callable[[str], int]]:
    def fit(questions: list[str]) -> Callable[[str], int]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(sublinear_tf=True, **vectorizer)
        matrix = vec.fit_transform(questions)
        return lambda q: int((matrix @ vec.transform([q]).T).toarray().ravel().argmax())
    return fit


def bm25(questions: list[str]) -> Callable[[str], int]:
    import numpy as np
    from rank_bm25 import BM25Okapi

    def tokens(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    index = BM25Okapi([tokens(q) for q in questions])
    return lambda q: int(np.argmax(index.get_scores(tokens(q))))


def chatterbot(split: Split, python: str, workdir: Path) -> Row | str:
    """ChatterBot trained on the same pairs, in its own interpreter; a note if it cannot run."""
    job = workdir / f"{split.name}-chatterbot.json"
    job.write_text(json.dumps({"pairs": [[q, a] for q, a, _ in split.pairs],
                               "questions": [e.message for e in split.held_out]}), encoding="utf-8")
    try:
        done = subprocess.run([python, str(CHATTERBOT), str(job)], capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"ChatterBot did not run: {e}"
    if done.returncode != 0:
        return f"ChatterBot failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Row("ChatterBot", out["answers"], out["latencies"], out["train_s"] / 60)


# -- scoring ---------------------------------------------------------------------------------

def intent_judge(split: Split) -> Any:
    """The reply-intent judge (TF-IDF + LR on the training replies), None without intents."""
    from apps.support.evaluate import IntentClassifier

    if all(e.intent for e in split.held_out) and all(i for _, _, i in split.pairs):
        return IntentClassifier([a for _, a, _ in split.pairs], [i for _, _, i in split.pairs])  # type: ignore[misc]
    return None


def judged_accuracy(judge: Any, answers: Sequence[str], split: Split) -> float:
    """Share of ``answers`` the judge puts in their held-out message's intent."""
    predicted = judge.predict(list(answers))
    return sum(p == e.intent for p, e in zip(predicted, split.held_out)) / len(split.held_out)


def score(rows: Sequence[Row], split: Split, judge: Any) -> list[dict[str, Any]]:
    from apps.support.evaluate import text_scores

    references = [e.reference for e in split.held_out]
    out = []
    for row in rows:
        bleu, rouge = text_scores(row.answers, references)
        accuracy = judged_accuracy(judge, row.answers, split) if judge is not None else None
        lat = sorted(row.latencies)
        out.append({"data": split.name, "system": row.system, "n": len(row.answers), "intent_accuracy": accuracy,
                    "bleu": round(bleu, 2), "rouge_l": round(rouge, 4),
                    "raw_placeholders": sum(bool(RAW_PLACEHOLDER.search(a)) for a in row.answers),
                    "handoffs": row.handoffs, "latency_p50_s": round(statistics.median(lat), 4),
                    "latency_p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 4),
                    "train_minutes": round(row.train_minutes, 2), **row.extra})
    return out


def print_table(results: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Support replies on held-out customer messages (train min: appkit's training loop; "
                        "baselines: fitting)")
    for col in ("data", "system", "n", "intent acc.", "BLEU", "ROUGE-L", "raw placeholders", "handoffs",
                "p50 s", "p95 s", "train min"):
        table.add_column(col, justify="left" if col in ("data", "system") else "right")
    for r in results:
        acc = "n/a" if r["intent_accuracy"] is None else f"{r['intent_accuracy']:.3f}"
        table.add_row(r["data"], r["system"], str(r["n"]), acc, f"{r['bleu']:.1f}", f"{r['rouge_l']:.3f}",
                      str(r["raw_placeholders"]), str(r["handoffs"]), f"{r['latency_p50_s']:.3f}",
                      f"{r['latency_p95_s']:.3f}", f"{r['train_minutes']:.1f}")
    Console(stderr=True, width=160).print(table)


def progress(items: Sequence[Any], label: str) -> Any:
    from appkit.progress import Progress

    with Progress(label, len(items)) as bar:
        for i, item in enumerate(items):
            yield item
            bar.update(i + 1)


# -- main ------------------------------------------------------------------------------------

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["bitext", "taskmaster"])
    p.add_argument("--bitext", type=Path, default=DATASETS["bitext"])
    p.add_argument("--taskmaster", type=Path, default=DATASETS["taskmaster"])
    p.add_argument("--per-intent", type=int, default=10, help="Bitext held-out messages per intent")
    p.add_argument("--held-out-fraction", type=float, default=0.1, help="Taskmaster dialogues held out")
    p.add_argument("--limit", type=int, default=300, help="at most this many held-out exchanges per history")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per history")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--home", type=Path, default=None, help="APPKIT_HOME for the trained models (default: a temp dir)")
    p.add_argument("--reuse", action="store_true", help="evaluate the models an earlier run left in --home")
    p.add_argument("--chatterbot-python", default=None, help="a Python with chatterbot installed")
    args = p.parse_args()

    for name in args.datasets:
        if not getattr(args, name).exists():
            sys.exit(f"{getattr(args, name)}: not found (give --{name} PATH; see ../shared/data/README.md)")
    if args.reuse and args.home is None:
        sys.exit("--reuse needs --home DIR: where the earlier run trained its models")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="appkit-bench-support-") as tmp:
        home = args.home or Path(tmp) / "home"
        os.environ["APPKIT_HOME"] = str(home)
        # A cold compile, as a user's first training pays it (a warm cache compiles in seconds).
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(tmp) / "inductor"))
        results: list[dict[str, Any]] = []
        notes: list[str] = []
        trainings: dict[str, dict[str, Any]] = {}
        ceilings: dict[str, float] = {}
        for name in args.datasets:
            work = Path(tmp)
            split = (split_bitext(args.bitext, work, args.per_intent, args.seed) if name == "bitext" else
                     split_taskmaster(args.taskmaster, work, args.held_out_fraction, args.seed, args.limit))
            print(f"{name}: {len(split.pairs)} training exchanges, {len(split.held_out)} held out", file=sys.stderr)
            training_file = home / f"bench-{name}-training.json"
            if args.reuse:
                training = json.loads(training_file.read_text())
            else:
                training = train_appkit(split, home, args)
                training_file.write_text(json.dumps(training))
            trainings[name] = training
            rows = run_appkit(split, home, training["train_minutes"], args)
            rows += [nearest_reply("TF-IDF words", split, tfidf(ngram_range=(1, 2))),
                     nearest_reply("TF-IDF chars", split, tfidf(analyzer="char_wb", ngram_range=(3, 5))),
                     nearest_reply("BM25", split, bm25)]
            if args.chatterbot_python:
                bot = chatterbot(split, args.chatterbot_python, work)
                rows.append(bot) if isinstance(bot, Row) else notes.append(f"{name}: {bot}")
            else:
                notes.append("ChatterBot not run: give --chatterbot-python (a venv with chatterbot)")
            judge = intent_judge(split)
            results += score(rows, split, judge)
            if judge is not None:
                # What a new reply can be expected to reach: the judge on the agents' real replies
                # (a past reply it was trained on can score higher, which is how lookups pass it).
                ceilings[name] = judged_accuracy(judge, [e.reference for e in split.held_out], split)
                notes.append(f"{name}: the judge gives the agents' own held-out replies {ceilings[name]:.3f}")
    print_table(results)
    for note in dict.fromkeys(notes):
        print(note, file=sys.stderr)
    print(json.dumps({"bench": "support", "commit": code_version(), "threads": torch.get_num_threads(),
                      "minutes": args.minutes, "max_steps": args.max_steps, "preset": args.preset,
                      "device": args.device, "training": trainings, "judge_on_references": ceilings, "results": results, "notes": list(dict.fromkeys(notes))}))


if __name__ == "__main__":
    main()
