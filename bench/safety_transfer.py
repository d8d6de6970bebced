"""Toxicity outside the training data: appkit's classifier vs a TF-IDF logistic regression vs the lexicon.

Every classifier learns from the same Davidson et al. 2017 tweets, those of at most 140
characters (safety_ood.LONG_TWEET) less a random tenth kept for the in-domain column, and is
then scored on text of other styles it never trained on (built by safety_ood.py from
../shared/data: see its docstring):

    in-domain        the random tenth of short tweets (for reference, not a target)
    long tweets      the 2,292 tweets longer than 140 characters (held out by length)
    rewrites         BOLD / CrowS-Pairs / HolisticBias sentences and paragraphs, half with abuse
                     written in from templates with the lexicon's words (flatters the lexicon)
    tweets in prose  each long tweet inside 2-5 such sentences, keeping its human label
    all OOD          the three out-of-domain sets together

Figures per set: ROC-AUC, and FPR at 95% recall (the share of clean texts flagged at the
threshold that catches 95% of the toxic ones). Then texts/s scoring all out-of-domain texts
in one batched call, on this machine's CPU.

- appkit: ``appkit.safety.train.train_classifier`` with its defaults (the code behind
  ``appkit safety train``; --encoder adds the transformer member), reloaded from disk as served;
  or ``--checkpoint DIR`` to score a saved one (e.g. a classifier from before this bench);
- TF-IDF LR: scikit-learn's TfidfVectorizer word 1-2-grams + char_wb 2-5-grams (sublinear, min_df
  2) and LogisticRegression with its defaults, on the raw tweets: the plain classical baseline;
- lexicon: appkit's word list (its toxicity score).

    python bench/safety_transfer.py                  # ~3 minutes on 2 CPU cores
    python bench/safety_transfer.py --checkpoint ~/.appkit/safety/NAME

Content warning: the test sets contain slurs and insults. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, code_version  # noqa: E402
from safety_ood import TestSet, other_style_sets, split_long  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TARGET_RECALL = 0.95


def fpr_at_recall(labels: list[int], scores: list[float], recall: float = TARGET_RECALL) -> float:
    """Share of clean texts scoring at least the threshold that flags ``recall`` of the toxic ones."""
    import numpy as np

    y, s = np.asarray(labels), np.asarray(scores, dtype=float)
    threshold = np.sort(s[y == 1])[int(np.floor((1 - recall) * (y == 1).sum()))]
    return float((s[y == 0] >= threshold).mean())


def figures(labels: list[int], scores: list[float]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {"roc_auc": float(roc_auc_score(labels, scores)), "fpr_at_95_recall": fpr_at_recall(labels, scores)}


class TfidfBaseline:
    """The plain classical baseline (see the module docstring)."""

    name = "TF-IDF LR"

    def __init__(self, texts: list[str], labels: list[int]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        self.pipeline = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
            LogisticRegression(max_iter=1000))
        self.pipeline.fit(texts, labels)

    def toxicity(self, texts: list[str]) -> list[float]:
        return self.pipeline.predict_proba(texts)[:, 1].tolist()


class Scored:
    """A ToxicityClassifier's toxicity score."""

    def __init__(self, classifier: Any) -> None:
        self.classifier, self.name = classifier, classifier.name

    def toxicity(self, texts: list[str]) -> list[float]:
        return [s["toxicity"] for s in self.classifier.score(texts)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED / "toxicity" / "davidson" / "labeled_data.csv")
    p.add_argument("--shared", type=Path, default=SHARED, help="../shared/data (BOLD, CrowS-Pairs, HolisticBias)")
    p.add_argument("--checkpoint", type=Path, default=None, help="score this saved appkit classifier instead of training")
    p.add_argument("--encoder", action="store_true", help="train appkit's classifier with its transformer member")
    p.add_argument("--max-minutes", type=float, default=5.0, help="with --encoder: its training budget")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the encoder member)")
    p.add_argument("--out", type=Path, default=None, help="keep the trained classifier here (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for path, what in ((args.data, "Davidson's labeled_data.csv"),
                       (args.shared / "bias" / "crows_pairs" / "crows_pairs_anonymized.csv", "CrowS-Pairs")):
        if not path.is_file():
            sys.exit(f"error: {path} not found ({what}); pass --data / --shared (see --help).")

    import torch

    from appkit.safety.backends import load_trained_classifier
    from appkit.safety.data import read_labelled, split_indices, subset
    from appkit.safety.lexicon import LexiconClassifier
    from appkit.safety.train import ClassifierOptions, train_classifier

    torch.set_num_threads(args.threads)
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    davidson = read_labelled(args.data)
    short, held = split_long(davidson.texts)
    tweets = subset(davidson, short)
    train_idx, test_idx = split_indices(len(tweets.texts), [0.1], seed=args.seed)
    train, test = subset(tweets, train_idx), subset(tweets, test_idx)
    long = subset(davidson, held)
    toxic = lambda d: [int(t[0] >= 0.5) for t in d.targets]  # noqa: E731
    long_set = TestSet("long tweets", long.texts, toxic(long))
    sets = [TestSet("in-domain", test.texts, toxic(test)), long_set, *other_style_sets(args.shared, long_set, seed=args.seed)]
    ood = sets[1:]
    sets.append(TestSet("all OOD", [t for s in ood for t in s.texts], [y for s in ood for y in s.labels]))
    log("sets: " + ", ".join(f"{s.name} {len(s.texts)} ({sum(s.labels)} toxic)" for s in sets))

    train_seconds = None
    if args.checkpoint:
        path = args.checkpoint
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="safety-transfer-"))
        options = ClassifierOptions(seed=args.seed, progress=False, encoder=args.encoder, threads=args.threads,
                                    max_minutes=args.max_minutes if args.encoder else None)
        started = time.time()
        path = train_classifier(train, name="transfer", out_root=out, options=options, log=log).path
        train_seconds = time.time() - started
    appkit = Scored(load_trained_classifier(path))
    log("training the TF-IDF baseline")
    started = time.time()
    baseline = TfidfBaseline(train.texts, toxic(train))
    baseline_seconds = time.time() - started
    contenders = [appkit, baseline, Scored(LexiconClassifier())]

    results: dict[str, Any] = {}
    all_ood = sets[-1]
    for c in contenders:
        row: dict[str, Any] = {}
        c.toxicity(all_ood.texts[:50])  # warm-up: first calls import and allocate
        started = time.perf_counter()
        scores = c.toxicity(all_ood.texts)
        row["texts_per_second"] = len(scores) / (time.perf_counter() - started)
        by_text = {}
        offset = 0
        for s in ood:
            by_text[s.name] = scores[offset:offset + len(s.texts)]
            offset += len(s.texts)
        by_text["all OOD"] = scores
        by_text["in-domain"] = c.toxicity(sets[0].texts)
        for s in sets:
            row[s.name] = figures(s.labels, by_text[s.name])
        results[c.name] = row

    names = [s.name for s in sets]
    print(f"Davidson-trained toxicity classifiers on text of other styles ({len(train.texts)} training tweets; "
          f"code {code_version()}; {platform.processor() or platform.machine()}, torch threads {args.threads})")
    print(f"{'ROC-AUC / FPR@95%recall':<26}" + "".join(f"{n:>17}" for n in names) + f"{'texts/s':>10}")
    for name, row in results.items():
        cells = "".join(f"{row[n]['roc_auc']:>9.3f} /{row[n]['fpr_at_95_recall']:>6.3f}" for n in names)
        print(f"{name:<26}{cells}{row['texts_per_second']:>10.0f}")
    a, b = results[appkit.name], results[baseline.name]
    ood_names = names[1:]
    misses = [f"{n} ROC-AUC" for n in ood_names if a[n]["roc_auc"] <= b[n]["roc_auc"]]
    misses += [f"{n} FPR@95" for n in ood_names if a[n]["fpr_at_95_recall"] >= b[n]["fpr_at_95_recall"]]
    misses += [f"{n} ROC-AUC < 0.90" for n in ood_names if a[n]["roc_auc"] < 0.90]
    if a["texts_per_second"] < 1000:
        misses.append("texts/s < 1,000")
    if a["texts_per_second"] <= b["texts_per_second"]:
        misses.append("texts/s not above the baseline")
    print("targets (appkit above the baseline on every out-of-domain column, ROC-AUC >= 0.90, >= 1,000 texts/s): "
          + ("all met" if not misses else "missed: " + ", ".join(misses)))
    print(json.dumps({
        "bench": "safety_transfer", "code": code_version(), "machine": platform.node(), "threads": args.threads,
        "seed": args.seed, "train_texts": len(train.texts), "train_seconds": train_seconds,
        "baseline_train_seconds": baseline_seconds, "checkpoint": str(path),
        "sets": {s.name: {"texts": len(s.texts), "toxic": sum(s.labels)} for s in sets},
        "results": results, "missed": misses,
    }))


if __name__ == "__main__":
    main()
