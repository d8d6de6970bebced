"""How well the reply router names a case's group for conversations it never saw, by the scale
at which it sees the agent turn before the customer's message.

    python dev/router_context.py MODEL_DIR [--scales 0.3 0.6 1.0 1.5]

MODEL_DIR is a trained support model (``$APPKIT_HOME/models/NAME``: its ``cases.jsonl``). Each
scale fits the router (``CaseIndex.fit_router``'s classifier) on four fifths of the conversations
and predicts the rest (5 folds, whole conversations), as ``CaseIndex.held_out_topics`` does;
accuracy is printed for all cases, those with an agent turn before them, and first turns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from apps.support.cases import CaseIndex, _router_model


def main() -> None:
    import numpy as np
    import scipy.sparse as sp
    from sklearn.model_selection import GroupKFold

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--scales", type=float, nargs="+", default=[0.3, 0.6, 1.0, 1.5])
    args = p.parse_args()
    index = CaseIndex.load(args.model_dir)
    if index is None:
        raise SystemExit(f"error: {args.model_dir} holds no cases.jsonl (not a support model?)")
    _, _, messages, contexts = index._fitted
    groups = np.array([c.group for c in index.cases])
    conversations = np.array([c.conversation_id for c in index.cases])
    after_agent = np.array([bool(c.context) for c in index.cases])
    for scale in args.scales:
        features = sp.hstack([messages, contexts * scale]).tocsr()
        predicted = groups.copy()
        for fit, held in GroupKFold(n_splits=5).split(features, groups, conversations):
            predicted[held] = _router_model(5.0).fit(features[fit], groups[fit]).predict(features[held])
        right = predicted == groups
        first = right[~after_agent].mean() if (~after_agent).any() else float("nan")
        later = right[after_agent].mean() if after_agent.any() else float("nan")
        print(f"context x{scale}: all {right.mean():.3f}; after an agent turn {later:.3f} ({after_agent.sum()}); "
              f"first turns {first:.3f}")


if __name__ == "__main__":
    main()
