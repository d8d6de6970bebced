"""The improvement loop, simulated end to end on Bitext: gaps and drift found, retrained, gated.

1. Split Bitext by wording (as bench/support.py does): per intent, ``--eval-per-intent`` wordings
   are held out to measure the bot and ``--replay-per-intent`` others are replayed as customers;
   the bot is trained on the rest, without the ``--missing`` intents at all.
2. Train the support bot (``train_support``: the code of ``appkit support train``) in ``select``
   reply mode (a past reply, or a handoff when none fits).
3. Replay the replay messages of all intents, one conversation each. A scripted customer judges
   each reply with the intent judge (apps/support/evaluate.py's IntentClassifier, trained on
   every Bitext reply outside the evaluation set): a right reply is rated good (every other one)
   and the conversation closed; a wrong one is rated bad and the customer asks for a person. A
   scripted human agent answers every handoff with the real Bitext reply (``Store.agent_reply``:
   the code of ``appkit conversations reply ID --as agent``).
4. ``appkit report`` on the store: for each missing intent, the share of its replayed messages
   that sit in a topic listed as a gap; the drift score and warning.
5. ``appkit support retrain`` (``retrain``, fine-tuning the active model): before/after reply
   intent accuracy on the evaluation messages, missing intents vs. the others.
6. A deliberately worse candidate (trained on the same conversations with every reply shuffled
   to a random other conversation) goes through the same gate (``--candidate``): it must be refused.

    python bench/loop.py                       # ~25-35 min on 2 CPU cores (nano preset)
    python bench/loop.py --preset tiny --max-minutes 8

Prints a table, then one JSON line with every figure. Writes the report (HTML, PNG, JSON) and
the store under ``--out`` (default: a temporary folder, kept and printed).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from common import REPO, code_version  # bench/ is on sys.path when a script runs

BITEXT = REPO.parent / "shared" / "data" / "support" / "bitext_llm_4.5k" / \
    "Bitext_Sample_Customer_Support_Training_Dataset.csv"
MISSING = ("newsletter_subscription", "check_cancellation_fee", "review", "delivery_options")
ASK_FOR_HUMAN = "That does not answer my question. Can I talk to a human agent please?"


def _wording(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z ]", " ", re.sub(r"\d+", "#", text.lower()))).strip()


def split(path: Path, missing: set[str], n_eval: int, n_replay: int, seed: int) -> dict[str, list[dict[str, str]]]:
    """train / replay / eval rows; wordings never cross sets; missing intents never in train."""
    if not path.is_file():
        print(f"error: {path} not found (Bitext CSV); pass --data PATH.", file=sys.stderr)
        sys.exit(2)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    unknown = missing - {r["intent"] for r in rows}
    if unknown:
        print(f"error: --missing {', '.join(sorted(unknown))}: not Bitext intents.", file=sys.stderr)
        sys.exit(2)
    first: dict[str, dict[str, str]] = {}
    by_intent: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        key = _wording(r["instruction"])
        if key not in first:
            first[key] = r
            by_intent[r["intent"]].append(key)
    rng = random.Random(seed)
    held_eval: set[str] = set()
    held_replay: set[str] = set()
    for intent in sorted(by_intent):
        keys = sorted(by_intent[intent])
        rng.shuffle(keys)
        held_eval.update(keys[:n_eval])
        held_replay.update(keys[n_eval:n_eval + n_replay])
    train = [r for r in rows if r["intent"] not in missing and _wording(r["instruction"]) not in held_eval | held_replay]
    replay = [first[k] for k in sorted(held_replay)]
    rng.shuffle(replay)
    return {"train": train, "replay": replay, "eval": [first[k] for k in sorted(held_eval)],
            "judge": [r for r in rows if _wording(r["instruction"]) not in held_eval]}


def accuracy(settings: Any, model: str | None, rows: list[dict[str, str]], judge: Any,
             missing: set[str]) -> dict[str, float]:
    """Reply intent accuracy on ``rows`` (a handoff counts as wrong), missing intents vs the others."""
    from apps.support.bot import SupportBot
    from apps.support.evaluate import Exchange, answer_all

    bot = SupportBot.open(model=model, settings=settings, policy=None)
    try:
        exchanges = [Exchange([], r["instruction"], r["response"], r["intent"]) for r in rows]
        replies = answer_all(bot, exchanges, None, bot.reply_mode)
    finally:
        bot.close()
    predicted = judge.predict([r.text for r in replies])
    right = [p == r["intent"] for p, r in zip(predicted, rows)]
    out: dict[str, float] = {}
    for group, keep in (("missing", lambda i: i in missing), ("others", lambda i: i not in missing)):
        picked = [ok for ok, r in zip(right, rows) if keep(r["intent"])]
        out[group] = sum(picked) / max(len(picked), 1)
    out["all"] = sum(right) / len(right)
    out["handed_over"] = sum(r.escalated for r in replies) / len(replies)
    return out


def replay(settings: Any, rows: list[dict[str, str]], judge: Any, seed: int) -> tuple[dict[int, str], Counter[str]]:
    """Each row a conversation with the bot, the scripted customer and agent; returns conversation -> intent."""
    from appkit.apps import load_app
    from appkit.progress import Progress

    rng = random.Random(seed)
    bot = load_app("support", settings=settings)
    intents: dict[int, str] = {}
    what: Counter[str] = Counter()
    try:
        with Progress("replaying customers", len(rows)) as bar:
            for i, r in enumerate(rows, 1):
                conv = bot.start(user=f"customer-{i}")
                intents[conv.id] = r["intent"]
                turn = bot.stream(conv.id, r["instruction"])
                "".join(turn)
                if not turn.escalated:
                    if judge.predict([turn.text])[0] == r["intent"]:
                        what["answered right"] += 1
                        if rng.random() < 0.5:
                            bot.rate(turn.reply_message.id, 1)
                        bot.store.set_status(conv.id, "closed")
                        bar.update(i)
                        continue
                    what["answered wrong"] += 1
                    bot.rate(turn.reply_message.id, -1)
                    "".join(bot.stream(conv.id, ASK_FOR_HUMAN))
                else:
                    what[f"handed over ({turn.reason})"] += 1
                bot.store.agent_reply(conv.id, r["response"], author="agent:sim")
                bar.update(i)
    finally:
        bot.close()
    return intents, what


def gap_recall(report: Any, intents: dict[int, str], store: Any, missing: set[str]) -> dict[str, float]:
    """Per missing intent: the share of its replayed first messages that sit in a gap topic."""
    gap_ids = {m for t in report.topics.gaps for m in t.message_ids}
    firsts: dict[int, int] = {}
    for m in store.activity("support", report.period.start, report.period.end).messages:
        if m.role == "user" and m.conversation_id not in firsts:
            firsts[m.conversation_id] = m.id
    out = {}
    for intent in sorted(missing):
        ids = [firsts[c] for c, i in intents.items() if i == intent and c in firsts]
        out[intent] = sum(m in gap_ids for m in ids) / max(len(ids), 1)
    return out


def worse_candidate(settings: Any, active: str, options: Any, minutes: float, log: Any) -> str:
    """A candidate trained on the retrain's own data with every reply moved to a random other conversation."""
    from appkit.data import Conversation, Turn
    from appkit.store import open_store
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.retrain import gather
    from apps.support.train import SPLIT_FILE, train_split

    with open_store(settings) as store:
        data = gather(store, store.get_model(active), options, settings, log)
    rng = random.Random(1)
    replies = [next(t.text for t in reversed(c.turns) if t.role == "assistant") for c in data.train]
    rng.shuffle(replies)
    shuffled = [Conversation(c.id, [Turn("user", next(t.text for t in c.turns if t.role == "user")),
                                    Turn("assistant", reply)], c.source, c.meta)
                for c, reply in zip(data.train, replies)]
    name = "loop-worse"
    with open_store(settings) as store:
        active_path = store.get_model(active).path
    training = ChatTrainingOptions(base=active_path, finetune="full", max_minutes=minutes, device="cpu",
                                   progress=False)
    trained = train_split(shuffled, [*data.base_val, *data.new_val], data.curation, name=name, options=training,
                          settings=settings, log=log)
    (trained.path / SPLIT_FILE).write_text(json.dumps({"train": [c.id for c in shuffled],
                                                       "validation": [c.id for c in data.base_val]}))
    with open_store(settings) as store:
        store.register_model(name, "support", str(trained.path), preset=trained.preset, params=trained.parameters,
                             metrics=trained.metrics, status="candidate", replace=True,
                             data={**trained.data, "history": str(data.history), "note": "replies shuffled"})
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=BITEXT)
    parser.add_argument("--missing", default=",".join(MISSING), help="Intents left out of training.")
    parser.add_argument("--eval-per-intent", type=int, default=12)
    parser.add_argument("--replay-per-intent", type=int, default=12)
    parser.add_argument("--preset", default="nano")
    parser.add_argument("--max-minutes", type=float, default=5.0, help="Training budget of the first model.")
    parser.add_argument("--retrain-minutes", type=float, default=3.0)
    parser.add_argument("--worse-minutes", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    missing = {m.strip() for m in args.missing.split(",") if m.strip()}

    from appkit.config import load_settings
    from appkit.insights.charts import render_charts
    from appkit.insights.html import write_html
    from appkit.insights.period import parse_period
    from appkit.insights.report import build_report
    from appkit.store import open_store
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.evaluate import IntentClassifier
    from apps.support.retrain import RetrainOptions, retrain
    from apps.support.train import train_support

    out = args.out or Path(tempfile.mkdtemp(prefix="appkit-loop-"))
    home = out / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "appkit.toml").write_text('[support]\nreply_mode = "select"\n')
    settings = load_settings(home=home, device="cpu", database_url=f"sqlite:///{home / 'appkit.db'}")
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731 - progress to stderr, results to stdout
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    sets = split(args.data, missing, args.eval_per_intent, args.replay_per_intent, args.seed)
    history = out / "bitext-train.csv"
    with history.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["instruction", "response", "intent"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("instruction", "response", "intent")} for r in sets["train"])
    judge = IntentClassifier([r["response"] for r in sets["judge"]], [r["intent"] for r in sets["judge"]])
    options = ChatTrainingOptions(preset=args.preset, max_minutes=args.max_minutes, epochs=1000, device="cpu",
                                  seed=args.seed)
    train_support(history, name="loop-v1", options=options, settings=settings, log=log)
    seconds["train"] = time.perf_counter() - clock

    before = accuracy(settings, None, sets["eval"], judge, missing)
    intents, outcomes = replay(settings, sets["replay"], judge, args.seed)
    seconds["replay"] = time.perf_counter() - clock - sum(seconds.values())

    report = build_report("support", parse_period("7d"), settings=settings)
    with open_store(settings) as store:
        recall = gap_recall(report, intents, store, missing)
    write_html(report, render_charts(report), out / "report.html")
    (out / "report.json").write_text(json.dumps(report.as_dict(), indent=2, default=str))
    seconds["report"] = time.perf_counter() - clock - sum(seconds.values())

    result = retrain(settings, RetrainOptions(min_new=20, audit_messages=60),
                     ChatTrainingOptions(max_minutes=args.retrain_minutes, epochs=1000, device="cpu"), log=log)
    after = accuracy(settings, None, sets["eval"], judge, missing)
    seconds["retrain"] = time.perf_counter() - clock - sum(seconds.values())

    worse_name = worse_candidate(settings, result.candidate if result.promoted else "loop-v1",
                                 RetrainOptions(min_new=1), args.worse_minutes, log)
    # The worse candidate is judged against the model now active (the retrained one, when promoted).
    refused = retrain(settings, RetrainOptions(min_new=1, candidate=worse_name, audit_messages=60), log=log)
    seconds["worse"] = time.perf_counter() - clock - sum(seconds.values())

    rows = [
        ("replayed conversations", f"{len(sets['replay'])}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items())),
        ("gap recall per missing intent", ", ".join(f"{k} {v:.0%}" for k, v in recall.items())),
        ("gaps listed", "; ".join(t.name for t in report.topics.gaps)),
        ("drift score (expected ~5%)", f"{report.drift.score:.1%}, warning {report.drift.warning}"),
        ("unseen words / held-out", f"{report.drift.unseen_words:.1%} / {report.drift.reference_unseen_words or 0:.1%}"),
        ("intent accuracy, missing intents", f"{before['missing']:.1%} -> {after['missing']:.1%}"),
        ("intent accuracy, other intents", f"{before['others']:.1%} -> {after['others']:.1%}"),
        ("handed over (eval messages)", f"{before['handed_over']:.1%} -> {after['handed_over']:.1%}"),
        ("retrained candidate promoted", f"{result.promoted} ({result.candidate})"),
        ("worse candidate refused", f"{not refused.promoted} (failed: "
                                     + ", ".join(g.name for g in refused.gates if not g.passed) + ")"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"bench/loop.py: Bitext without {', '.join(sorted(missing))}; preset {args.preset}, "
          f"{args.max_minutes:g} + {args.retrain_minutes:g} min of training; out {out}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(json.dumps({
        "bench": "loop", "code": code_version(), "preset": args.preset, "missing": sorted(missing),
        "train_rows": len(sets["train"]), "replay": len(sets["replay"]), "eval": len(sets["eval"]),
        "outcomes": dict(outcomes), "gap_recall": recall, "gaps": [t.name for t in report.topics.gaps],
        "drift": report.drift.as_dict() if report.drift else None, "before": before, "after": after,
        "retrain": result.as_dict(), "worse": refused.as_dict(), "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "out": str(out),
    }, default=str))


if __name__ == "__main__":
    main()
