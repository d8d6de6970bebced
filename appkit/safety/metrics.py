"""Classification metrics for the toxicity and sentiment classifiers (no scikit-learn in the library)."""

from __future__ import annotations

from collections.abc import Sequence


def roc_auc(y_true: Sequence[int | bool | float], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None if one class is absent."""
    pairs = sorted(zip(scores, (1 if y >= 0.5 else 0 for y in y_true)), key=lambda p: p[0])
    pos = sum(y for _, y in pairs)
    neg = len(pairs) - pos
    if pos == 0 or neg == 0:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(pairs):  # average rank over a run of tied scores
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg = (i + 1 + j) / 2
        rank_sum += avg * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def binary_f1(y_true: Sequence[int | bool | float], y_pred: Sequence[int | bool]) -> dict[str, float]:
    """Precision, recall and F1 of the positive class."""
    tp = sum(1 for t, p in zip(y_true, y_pred) if t >= 0.5 and p)
    fp = sum(1 for t, p in zip(y_true, y_pred) if t < 0.5 and p)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t >= 0.5 and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """F1 averaged over classes, each counting the same (a rare class matters as much as a common one)."""
    scores = [binary_f1([t == c for t in y_true], [p == c for p in y_pred])["f1"] for c in range(n_classes)]
    return sum(scores) / n_classes


def weighted_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """F1 per class averaged with weights = class support (as Davidson et al. 2017 report)."""
    classes = sorted(set(y_true))
    total = len(y_true)
    if not total:
        return 0.0
    out = 0.0
    for c in classes:
        support = sum(1 for t in y_true if t == c)
        f1 = binary_f1([t == c for t in y_true], [p == c for p in y_pred])["f1"]
        out += f1 * support / total
    return out


def davidson_class(scores: dict[str, float], threshold: float = 0.5, hate_threshold: float | None = None) -> int:
    """Davidson's class from detoxify-style scores: 0 hate (identity_attack), 1 offensive, 2 neither."""
    hate_t = threshold if hate_threshold is None else hate_threshold
    if scores.get("identity_attack", 0.0) >= hate_t:
        return 0
    if scores.get("toxicity", 0.0) >= threshold:
        return 1
    return 2
