"""Toxicity on Davidson et al. 2017: the self-trained classifier vs. keyword lists, and the policy's cost.

1. Davidson's 24,783 tweets (0 hate, 1 offensive, 2 neither) split 80/10/10 with a fixed seed.
   A classifier is trained on the 80% (the 10% validation split chooses its blend and
   thresholds) with ``appkit.safety.train`` (n-grams and the lexicon; ``--encoder`` adds the
   transformer member, trained under a CPU time budget), saved, reloaded as it is served and
   scored on the 10% test split.
   Figures: ROC-AUC and F1 of the binary toxic label (hate or offensive) and of hate, the
   3-class weighted F1 (Davidson et al. report 0.90 for their model), next to two keyword
   baselines: appkit's own lexicon and the LDNOOBW list (../shared/data/toxicity/ldnoobw/en).
2. Throughput: texts/s scoring the test split batched on CPU (and the lexicon's).
3. Identity bias: false-positive rate on neutral identity statements (audit templates, never
   trained on) with identity mitigation and, with --compare-minutes > 0, a model trained
   without it (before/after).
4. False alarms on real support replies: share of the agent replies in the shipped sample
   history that the output policy would mask or block.
5. Policy cost on CPU: the time ``check(input)`` + ``guard_stream(output)`` add to one typical
   reply (a 40-token reply checked sentence by sentence), against generating a 60-token reply
   with a ``tiny`` model (random weights unless --model: only speed matters).

    python bench/safety_davidson.py                       # ~3 minutes on 2 CPU cores (--encoder: ~10)
    python bench/safety_davidson.py --checkpoint ~/.appkit/safety/toxicity-...   # evaluate only

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, code_version  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TYPICAL_INPUT = "Hi, I ordered a blender two weeks ago and it still hasn't arrived. Can you check where it is?"
TYPICAL_REPLY = ("Thanks for reaching out! I checked your order and it shipped yesterday. It should arrive within "
                 "3 business days. Is there anything else I can help you with today?")


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        sys.exit(f"error: {path} not found ({what}); pass its path (see --help).")
    return path


def keyword_metrics(name: str, classifier: Any, test: Any) -> dict[str, Any]:
    """A lexicon's figures on the test split, on the same terms as the model's."""
    from appkit.safety.train import evaluate

    started = time.perf_counter()
    scores = classifier.score(test.texts)
    seconds = time.perf_counter() - started
    scores = [{"toxicity": s["toxicity"], "identity_attack": s.get("identity_attack", 0.0)} for s in scores]
    out = evaluate(test, scores)
    out["texts_per_second"] = len(test.texts) / seconds
    out["name"] = name
    return out


def identity_fpr(classifier: Any) -> dict[str, Any]:
    from appkit.safety.audit import identity_fpr as fpr
    from appkit.safety.identity import BUILTIN
    from appkit.safety.policy import Policy

    result = fpr(Policy("support", classifier), list(BUILTIN))
    worst = max(result["groups"].items(), key=lambda kv: kv[1]["fpr"])
    return {"fpr": result["fpr"], "max_group_fpr": result["max_group_fpr"], "worst_group": worst[0],
            "statements": result["statements"]}


def support_false_alarms(classifier: Any) -> dict[str, Any]:
    """Share of the sample history's agent replies the output policy would not allow as they are."""
    from appkit.data import read_history
    from appkit.safety.policy import Policy

    history = REPO / "apps" / "support" / "data" / "sample_history.csv"
    replies = list(dict.fromkeys(t.text for c in read_history(history) for t in c.turns if t.role == "assistant"))
    policy = Policy("support", classifier)
    actions = [policy.check(text, "output").action for text in replies]
    changed = [r for r, a in zip(replies, actions) if a != "allow"]
    return {"replies": len(replies), "not_allowed": len(changed), "rate": len(changed) / max(1, len(replies)),
            "examples": changed[:3]}


def policy_cost(classifier: Any, model_dir: Path | None, threads: int, rounds: int = 7) -> dict[str, Any]:
    """Median ms of the policy on one typical exchange vs. generating a 60-token reply."""
    import dataclasses

    import torch

    from appkit.data import read_history
    from appkit.engine import GREEDY, Engine
    from appkit.safety.policy import Policy

    torch.set_num_threads(threads)
    if model_dir is not None:
        engine = Engine.load(model_dir)
    else:
        from appkit.model.build import build_model
        from appkit.model.presets import get_preset
        from appkit.tokenizer import train_tokenizer

        history = REPO / "apps" / "support" / "data" / "sample_history.csv"
        tok = train_tokenizer(t.text for c in read_history(history) for t in c.turns)
        engine = Engine(build_model(get_preset("tiny"), tok), tok, name="tiny (random)")
    engine.stop_ids = frozenset()  # exactly 60 new tokens every time
    params = dataclasses.replace(GREEDY, max_new_tokens=60)
    messages = [{"role": "user", "content": TYPICAL_INPUT}]
    policy = Policy("support", classifier)
    reply_tokens = len(engine.tokenizer.encode(TYPICAL_REPLY, add_special_tokens=False))
    words = [w + " " for w in TYPICAL_REPLY.split(" ")]

    def guard() -> float:
        started = time.perf_counter()
        policy.check(TYPICAL_INPUT, "input")
        guarded = policy.guard_stream(iter(words))
        for _ in guarded:
            pass
        assert guarded.decision is not None and guarded.decision.action == "allow"
        return time.perf_counter() - started

    def generate() -> float:
        started = time.perf_counter()
        reply = engine.reply(messages, params)
        assert reply.stats.completion_tokens == 60, reply.stats
        return time.perf_counter() - started

    guard(), generate()  # warm-up: first calls allocate
    g, p = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine load
        p.append(guard())
        g.append(generate())
    engine.close()
    gen_ms, pol_ms = 1000 * statistics.median(g), 1000 * statistics.median(p)
    return {"generation_ms": gen_ms, "policy_ms": pol_ms, "overhead_pct": 100 * pol_ms / gen_ms,
            "reply_tokens": reply_tokens, "sentences": 3, "generated_tokens": 60, "model": engine.name,
            "threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED / "toxicity" / "davidson" / "labeled_data.csv")
    p.add_argument("--ldnoobw", type=Path, default=SHARED / "toxicity" / "ldnoobw" / "en")
    p.add_argument("--encoder", action="store_true", help="train the classifier with its transformer member")
    p.add_argument("--max-minutes", type=float, default=5.0, help="with --encoder: its training budget")
    p.add_argument("--compare-minutes", type=float, default=4.0,
                   help="also train a model without identity mitigation (0: skip); with --encoder, its budget")
    p.add_argument("--checkpoint", type=Path, default=None, help="evaluate this checkpoint instead of training")
    p.add_argument("--model", type=Path, default=None, help="a saved chat model for the generation timing")
    p.add_argument("--out", type=Path, default=None, help="keep the checkpoints here (default: a temp dir)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    from appkit.safety.backends import load_trained_classifier
    from appkit.safety.data import read_labelled, split_indices, subset
    from appkit.safety.lexicon import Lexicon, LexiconClassifier
    from appkit.safety.train import ClassifierOptions, evaluate, train_classifier

    torch.set_num_threads(args.threads)
    data = read_labelled(_need(args.data, "Davidson's labeled_data.csv"))
    train_idx, val_idx, test_idx = split_indices(len(data.texts), [0.1, 0.1], seed=args.seed)
    train, val, test = subset(data, train_idx), subset(data, val_idx), subset(data, test_idx)
    out = args.out or Path(tempfile.mkdtemp(prefix="safety-davidson-"))
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731

    trained_seconds = None
    if args.checkpoint:
        path = args.checkpoint
    else:
        options = ClassifierOptions(max_minutes=args.max_minutes, seed=args.seed, threads=args.threads, progress=False,
                                    encoder=args.encoder)
        started = time.time()
        path = train_classifier(train, name="davidson", out_root=out, options=options, val=val, log=log).path
        trained_seconds = time.time() - started
    clf = load_trained_classifier(path)  # reloaded from disk, as `auto` serves it
    started = time.perf_counter()
    scores = clf.score(test.texts)
    model_tps = len(test.texts) / (time.perf_counter() - started)
    model = evaluate(test, scores)
    model["texts_per_second"] = model_tps
    meta = json.loads((Path(path) / "safety.json").read_text())

    builtin = keyword_metrics("appkit lexicon", LexiconClassifier(), test)
    ldnoobw = keyword_metrics("LDNOOBW list", LexiconClassifier(Lexicon.from_file(
        _need(args.ldnoobw, "LDNOOBW en list"), include_builtin=False)), test)

    bias = {"mitigated": identity_fpr(clf), "lexicon": identity_fpr(LexiconClassifier())}
    if args.compare_minutes > 0 and not args.checkpoint:
        options = ClassifierOptions(max_minutes=args.compare_minutes, seed=args.seed, threads=args.threads,
                                    progress=False, mitigate_identity=False, encoder=args.encoder)
        plain = train_classifier(train, name="davidson-unmitigated", out_root=out, options=options, val=val, log=log)
        plain_clf = load_trained_classifier(plain.path)
        bias["unmitigated"] = identity_fpr(plain_clf)
        unmitigated = evaluate(test, plain_clf.score(test.texts))
        bias["unmitigated"]["weighted_f1"] = unmitigated["weighted_f1"]
    alarms = support_false_alarms(clf)
    cost = policy_cost(clf, args.model, args.threads)

    members = " + ".join((meta.get("blend") or {}).get("members", ["encoder"]))
    rows = [(f"appkit ({members})", model), (builtin["name"], builtin), (ldnoobw["name"], ldnoobw)]
    print(f"Davidson et al. 2017, test split: {len(test.texts)} tweets (seed {args.seed}); code {code_version()}; "
          f"trained in {meta['metrics']['seconds']:.0f}s")
    print(f"{'classifier':<26}{'toxic AUC':>10}{'toxic F1':>10}{'hate AUC':>10}{'hate F1':>9}{'3-cl wF1':>10}{'texts/s':>10}")
    for name, m in rows:
        tox, hate = m["labels"]["toxicity"], m["labels"]["identity_attack"]
        auc = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:<26}{auc(tox['roc_auc']):>10}{tox['f1']:>10.3f}{auc(hate['roc_auc']):>10}{hate['f1']:>9.3f}"
              f"{m['weighted_f1']:>10.3f}{m['texts_per_second']:>10.0f}")
    print(f"{'Davidson et al. (paper)':<26}{'':>10}{'':>10}{'':>10}{'':>9}{0.90:>10.2f}")
    print("identity FPR on neutral statements (all / worst group):")
    for name, b in bias.items():
        print(f"  {name:<12} {100 * b['fpr']:5.1f}% / {100 * b['max_group_fpr']:5.1f}% ({b['worst_group']})")
    print(f"support replies the output policy would change: {alarms['not_allowed']}/{alarms['replies']}")
    print(f"policy cost: {cost['policy_ms']:.1f} ms per exchange vs {cost['generation_ms']:.0f} ms to generate "
          f"{cost['generated_tokens']} tokens ({cost['model']}): +{cost['overhead_pct']:.1f}%")
    result = {
        "bench": "safety_davidson", "code": code_version(), "machine": platform.node(), "test_texts": len(test.texts),
        "seed": args.seed, "threads": args.threads, "train_seconds": trained_seconds, "checkpoint": str(path),
        "members": members,
        "model": {k: model[k] for k in ("labels", "weighted_f1", "texts_per_second")},
        "lexicon": {k: builtin[k] for k in ("labels", "weighted_f1", "texts_per_second")},
        "ldnoobw": {k: ldnoobw[k] for k in ("labels", "weighted_f1", "texts_per_second")},
        "paper_weighted_f1": 0.90, "identity_fpr": bias, "support_false_alarms": alarms, "policy_cost": cost,
    }
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
