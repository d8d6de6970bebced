"""How well the reply router names a case's group for conversations it never saw, by the scale
at which it sees the agent turn before the customer's message and the switched-subject copies
it is also fitted on.

    python dev/router_context.py MODEL_DIR [--scales 0.3 1.0] [--switched 0 2] [--gate 1 0]

MODEL_DIR is a trained support model (``$APPKIT_HOME/models/NAME``: its ``cases.jsonl``). Each
setting fits the router (``CaseIndex._fit_router_model``, with ``ROUTER_CONTEXT`` and
``SWITCHED_COPIES`` set to it, and with or without ``OPENING_GATE``) on four fifths of the conversations and predicts the rest (5 folds,
whole conversations), as ``CaseIndex.held_out_topics`` does. Printed: accuracy on all held-out
cases, on those after an agent turn, on opening messages, and on opening messages put after an
agent turn of another group's held-out conversation (a customer changing the subject).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import apps.support.cases as cases
from apps.support.cases import CaseIndex


def main() -> None:
    import numpy as np
    import scipy.sparse as sp
    from sklearn.model_selection import GroupKFold

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--scales", type=float, nargs="+", default=[0.3, 1.0])
    p.add_argument("--switched", type=int, nargs="+", default=[0, 2])
    p.add_argument("--gate", type=int, nargs="+", default=[1], help="1: the opening gate (OPENING_GATE), 0: none")
    args = p.parse_args()
    index = CaseIndex.load(args.model_dir)
    if index is None:
        raise SystemExit(f"error: {args.model_dir} holds no cases.jsonl (not a support model?)")
    _, _, messages, contexts = index._fitted
    groups = np.array([c.group for c in index.cases])
    conversations = np.array([c.conversation_id for c in index.cases])
    later = index._later
    settings = [(scale, copies, gate) for scale in args.scales for copies in args.switched for gate in args.gate]
    for scale, copies, gate in settings:
        cases.ROUTER_CONTEXT, cases.SWITCHED_COPIES, cases.OPENING_GATE = scale, copies, bool(gate)
        index.__dict__.pop("_held_out_opening", None)
        opening = index._held_out_opening  # out of fold: the same folds by conversation as below
        features = index._router_features()
        predicted, switched = groups.copy(), []
        rng = np.random.default_rng(1)
        for fit, held in GroupKFold(n_splits=5).split(features, groups, conversations):
            model = index._fit_router_model(features, fit, groups, 5.0)
            predicted[held] = model.predict(features[held])
            openings, turns = held[~later[held]], held[later[held]]
            if len(openings) and len(turns):
                after = rng.choice(turns, size=len(openings))
                other = groups[after] != groups[openings]
                shown = sp.diags(1.0 - opening[openings[other]]) @ contexts[after[other]]
                x = sp.hstack([messages[openings[other]], shown * scale]).tocsr()
                switched += list(model.predict(x) == groups[openings[other]])
        right = predicted == groups
        print(f"context x{scale}, {copies} switched copies, {'a' if gate else 'no'} gate: all {right.mean():.3f}; "
              f"after an agent turn "
              f"{right[later].mean() if later.any() else float('nan'):.3f}; openings "
              f"{right[~later].mean() if (~later).any() else float('nan'):.3f}; "
              f"changed subject {np.mean(switched) if switched else float('nan'):.3f}")


if __name__ == "__main__":
    main()
