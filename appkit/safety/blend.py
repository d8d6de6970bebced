"""appkit's own toxicity classifier as served: its members' logits, combined per label.

Members: ``ngrams`` (ngrams.py: word and character n-grams with the lexicon as evidence,
always) and ``encoder`` (encoder.py: a small BERT, when trained with ``--encoder``). Per label
the served logit is a weighted sum of the members' logits plus a bias, fitted on the
validation split (a logistic regression on the members' validation logits: Platt scaling
for one member, stacking for two). A member joins only when it lowers the validation
log-loss, so a member that does not help costs nothing at scoring time.

The directory ``appkit safety train`` writes (format 2)::

    safety.json          labels, members, the combination per label, metrics, options
    ngrams.safetensors   the n-gram member
    detoxify.ckpt, hf/   the encoder member, in detoxify's format (only when it was kept)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from appkit.errors import SafetyError

METADATA_FILE = "safety.json"
FORMAT = 2
MEMBER_ORDER = ("ngrams", "encoder")  # the order members are tried in: cheapest first


class Member(Protocol):
    """A model inside the blend."""

    labels: tuple[str, ...]

    def logits(self, texts: Sequence[str]) -> Any:
        """Logits per label of raw ``texts``, numpy float64 (N, L)."""
        ...


@dataclass(frozen=True)
class Combination:
    """How one label's logit is made: ``sum(weights[m] * logit_m) + bias``."""

    weights: dict[str, float]
    bias: float

    def as_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "bias": self.bias}


class BlendClassifier:
    """The self-trained classifier (a ToxicityClassifier): members, then one combination per label."""

    def __init__(self, name: str, labels: Sequence[str], members: Mapping[str, Member],
                 combination: Mapping[str, Combination]) -> None:
        self.name = name
        self.labels: tuple[str, ...] = tuple(labels)
        self.members = dict(members)
        self.combination = dict(combination)

    def logits(self, texts: Sequence[str]) -> Any:
        """Blended logits, numpy float64 (N, L)."""
        import numpy as np

        out = np.zeros((len(texts), len(self.labels)))
        if not len(texts):
            return out
        member_logits = {name: member.logits(texts) for name, member in self.members.items()}
        for j, label in enumerate(self.labels):
            c = self.combination[label]
            out[:, j] = c.bias + sum(w * member_logits[m][:, self.members[m].labels.index(label)]
                                     for m, w in c.weights.items())
        return out

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores in [0, 1] per label, one dict per text; ``[]`` for ``[]``; empty text scores 0."""
        import numpy as np
        from scipy.special import expit

        if isinstance(texts, str):
            texts = [texts]
        texts = ["" if t is None else str(t) for t in texts]
        out = [dict.fromkeys(self.labels, 0.0) for _ in texts]
        kept = [i for i, t in enumerate(texts) if t.strip()]
        if kept:
            probs = np.round(expit(self.logits([texts[i] for i in kept])), 6)
            for row, i in zip(probs.tolist(), kept):
                out[i] = dict(zip(self.labels, row))
        return out


def choose_blend(val_logits: Mapping[str, Any], targets: Sequence[Sequence[float]],
                 labels: Sequence[str]) -> tuple[dict[str, Combination], dict[str, Any]]:
    """The members to keep and their combination per label, fitted on validation logits.

    ``val_logits``: member name -> its logits on the validation texts (N, L), tried in order;
    the first is always kept, each next one only if it lowers the mean (out-of-fold) log-loss
    over labels.
    Returns (combination per label, figures: members, log-loss of each step and of each alone).
    """
    names = list(val_logits)
    chosen = [names[0]]
    best, combination = _fit(val_logits, chosen, targets, labels)
    figures: dict[str, Any] = {"alone": {n: round(_fit(val_logits, [n], targets, labels)[0], 4) for n in names}}
    for name in names[1:]:
        loss, trial = _fit(val_logits, [*chosen, name], targets, labels)
        if loss < best:
            chosen, best, combination = [*chosen, name], loss, trial
    figures.update({"members": chosen, "val_log_loss": round(best, 4)})
    return combination, figures


def _fit(val_logits: Mapping[str, Any], names: Sequence[str], targets: Sequence[Sequence[float]],
         labels: Sequence[str]) -> tuple[float, dict[str, Combination]]:
    """Mean out-of-fold validation log-loss over labels, and the combination (fitted on all of it), of ``names``.

    Out of fold (5-fold cross-validation on the validation split): fitted and scored on the
    same texts, any extra member, even noise, lowers the log-loss a little.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    combination: dict[str, Combination] = {}
    losses = []
    for j, label in enumerate(labels):
        x = np.stack([val_logits[n][:, j] for n in names], axis=1)  # (N, members)
        y = np.asarray([t[j] >= 0.5 for t in targets], dtype=int)
        folds = min(5, int(np.bincount(y, minlength=2).min()))
        if folds < 2:  # too few of one class to fit anything: keep the first member as it is
            combination[label] = Combination({names[0]: 1.0}, 0.0)
            p = 1 / (1 + np.exp(-x[:, 0]))
        else:
            lr = LogisticRegression(C=100.0, max_iter=1000)
            p = cross_val_predict(lr, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                                  method="predict_proba")[:, 1]
            lr.fit(x, y)
            combination[label] = Combination({n: float(w) for n, w in zip(names, lr.coef_[0])}, float(lr.intercept_[0]))
        p = np.clip(p, 1e-7, 1 - 1e-7)
        losses.append(float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()))
    return sum(losses) / len(losses), combination


def shift(combination: Mapping[str, Combination], thresholds: Mapping[str, float]) -> dict[str, Combination]:
    """Move each label's bias so that score 0.5 means ``thresholds[label]`` (see train.calibrate)."""
    out = dict(combination)
    for label, t in thresholds.items():
        c = out[label]
        out[label] = Combination(c.weights, c.bias - math.log(t / (1 - t)))
    return out


# --- storage -------------------------------------------------------------------------------------------


def is_blend_dir(path: Path) -> bool:
    """Whether ``path`` holds a format-2 classifier (safety.json naming its members)."""
    try:
        return int(json.loads((path / METADATA_FILE).read_text()).get("appkit_format", 1)) >= FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_blend(path: Path, *, device: str = "cpu") -> BlendClassifier:
    """The classifier saved in ``path`` by ``appkit safety train``.

    Raises:
        SafetyError: its metadata or a member is missing, damaged or unknown to this appkit.
    """
    from appkit.safety.encoder import EncoderMember
    from appkit.safety.ngrams import NgramModel

    path = Path(path)
    try:
        meta = json.loads((path / METADATA_FILE).read_text())
        labels, names = list(meta["labels"]), list(meta["blend"]["members"])
        combination = {label: Combination(dict(c["weights"]), float(c["bias"]))
                       for label, c in meta["blend"]["combination"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SafetyError(f"{path / METADATA_FILE}: cannot be read as a toxicity classifier ({type(e).__name__}: "
                          f"{e}); train it again (`appkit safety train`).") from None
    loaders = {"ngrams": NgramModel.load, "encoder": lambda p: EncoderMember.load(p, device=device)}
    unknown = [n for n in names if n not in loaders]
    if unknown or set(combination) != set(labels):
        raise SafetyError(f"{path}: blends {', '.join(unknown) or 'other labels'}, which this appkit does not know; "
                          "upgrade appkit or train it again.")
    members = {n: loaders[n](path) for n in names}
    return BlendClassifier(f"trained:{path.name}", labels, members, combination)
