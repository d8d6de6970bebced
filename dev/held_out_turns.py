"""How often the grounding pipeline without the model gives the right kind of reply in whole
conversations it never saw, turn by turn, and when the customer changes the subject.

    python dev/held_out_turns.py [HISTORY] [--model MODEL_DIR] [--shared 3 0] [--gate 1 0] [--show N [--kind ROW]]

HISTORY is a history with an ``intent`` per conversation (default: the sample history shipped with
appkit), curated as training curates it (order numbers replaced ...). Five folds by conversation: the cases of four fifths are indexed, grouped and routed as
training does (``CaseIndex.group_replies``, ``fit_router``), and every agent turn of the rest is
answered with the best candidate by the "retrieval" weights (MODEL_DIR's ``grounding.json``, else
the defaults). ``--shared`` sets ``cases.SHARED_INTENTS`` (0: replies many intents share stay in
each conversation's intent, as before it existed); ``--gate`` sets ``cases.OPENING_GATE``.

A reply is right when the history gives it (digits masked) under the same intents as the agent's
real reply: an answer of its own intent, or any closing shared by many intents for a closing. Rows:
opening messages, later answers, closings ("thanks!" after the answer), and a changed subject: a
held-out conversation cut after one of its answers and followed by the opening message of
another intent's held-out conversation ("I want a refund, this is ridiculous" after the order
status), whose right reply is that conversation's first.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import apps.support.cases as cases
from appkit.data import curate, read_history
from apps.support.app import SAMPLE_HISTORY
from apps.support.cases import CaseIndex, cases_from
from apps.support.grounding import Grounder, Weights, exchanges_of, load_weights


CLOSING = 3  # a reply the history gives under this many intents is a closing, whatever the grouping
SHARED = frozenset(["(shared)"])  # the kind of every such reply


def masked(text: str) -> str:
    return re.sub(r"\d+", "#", text.strip())


def main() -> None:
    import numpy as np
    from sklearn.model_selection import GroupKFold

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("history", type=Path, nargs="?", default=SAMPLE_HISTORY)
    p.add_argument("--model", type=Path, help="a trained support model: its retrieval weights")
    p.add_argument("--show", type=int, default=0, help="print this many wrong replies of --kind")
    p.add_argument("--kind", default="changed subject", help="which turns --show prints (a row's name)")
    p.add_argument("--shared", type=int, nargs="+", default=[cases.SHARED_INTENTS, 0])
    p.add_argument("--gate", type=int, nargs="+", default=[1], help="1: the router's opening gate, 0: none")
    args = p.parse_args()
    curated, _ = curate(read_history(args.history), toxic="keep")  # personal data replaced, as in training
    conversations = [c for c in curated if c.meta.get("intent")]
    if len({c.meta["intent"] for c in conversations}) < 2:
        raise SystemExit(f"error: {args.history}: needs an intent per conversation, of at least two kinds")
    weights = {"retrieval": load_weights(args.model)["retrieval"] if args.model else Weights()}
    kinds: dict[str, set[str]] = defaultdict(set)  # masked reply -> the intents it answers
    for conv in conversations:
        for turn in conv.turns:
            if turn.role == "assistant":
                kinds[masked(turn.text)].add(conv.meta["intent"])

    def kind(reply: str) -> frozenset[str]:
        """The intents a reply answers; one kind for all the closings many intents share."""
        named = kinds.get(masked(reply), set())
        return SHARED if len(named) >= CLOSING else frozenset(named)

    for shared, gate in [(shared, gate) for shared in args.shared for gate in args.gate]:
        cases.SHARED_INTENTS, cases.OPENING_GATE = shared or 10**9, bool(gate)
        right: dict[str, list[bool]] = defaultdict(list)
        shown: list[str] = []
        rng = np.random.default_rng(0)
        ids = np.arange(len(conversations))
        for fit, held in GroupKFold(n_splits=5).split(ids, groups=ids):
            index = CaseIndex(cases_from([conversations[i] for i in fit]))
            index.group_replies()
            index.fit_router()
            grounder = Grounder(index, weights)

            def judge(row: str, messages: list[dict[str, str]], reference: str) -> None:
                candidates = grounder.rank(grounder.gather(messages), "retrieval")
                chosen = candidates[0].text if candidates else ""
                right[row].append(kind(chosen) == kind(reference))
                if not right[row][-1] and row == args.kind and shown.count(row) < args.show:
                    shown.append(row)
                    print(f"  after {messages[-2]['content'][:60]!r}: {messages[-1]['content']!r}\n"
                          f"    -> {chosen[:70]!r}\n    agent: {reference[:70]!r}")

            held_convs = [conversations[i] for i in held]
            for conv in held_convs:
                answered = []  # the conversation up to each agent turn that is not a closing
                for ex in exchanges_of([conv]):
                    closing = kind(ex.reference) == SHARED
                    row = "opening" if len(ex.messages) == 1 else "closing" if closing else "later answer"
                    judge(row, ex.messages, ex.reference)
                    if not closing:
                        answered.append([*ex.messages, {"role": "assistant", "content": ex.reference}])
                if not answered:
                    continue
                other = [c for c in held_convs if c.meta["intent"] != conv.meta["intent"]]
                switch = exchanges_of([other[int(rng.integers(len(other)))]])[:1]
                if switch and len(switch[0].messages) == 1:
                    cut = answered[int(rng.integers(len(answered)))]
                    judge("changed subject", [*cut, *switch[0].messages], switch[0].reference)
        label = (f"SHARED_INTENTS={shared}" if shared else "shared replies in each intent") + \
            (", opening gate" if gate else ", no gate")
        print(f"{label}: " + "; ".join(f"{row} {np.mean(r):.3f} ({len(r)})" for row, r in sorted(right.items())))


if __name__ == "__main__":
    main()
