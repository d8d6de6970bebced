"""Calibrated probabilities: temperature scaling (Guo et al. 2017) and expected calibration error.

One scalar T divides the logits; it changes no prediction (argmax is the same), only how sure
the probabilities say the model is. T is fitted on the validation split by minimising NLL, then
folded into the classifier's last layer (``fold_temperature``) so the saved model's plain
softmax is already calibrated, with or without appkit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

ECE_BINS = 15
# Sharpening (T < 1) needs mistakes to measure: on a validation split the model gets (almost)
# all right, NLL keeps falling as T -> 0 and the model would claim certainty on anything (a toy
# set at 100% fitted T = 0.05 and called "wow" neutral at 0.99995). With fewer errors than this
# T stops at 0.5: enough to undo label smoothing's built-in doubt, not enough to claim certainty.
MIN_ERRORS_TO_SHARPEN = 10


def fit_temperature(logits: Any, targets: Any) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T); logits (N, C), targets (N,).

    A log-spaced grid then a finer one around the best point: NLL in T is smooth and unimodal
    in practice, and a grid cannot diverge the way LBFGS on log T sometimes does. T stays in
    [0.25, 20], and at 0.5 or more when there are too few errors to measure sharpening by.
    """
    import torch.nn.functional as F

    logits, targets = logits.detach().float(), targets.detach().long()
    if not len(targets):
        return 1.0
    errors = int((logits.argmax(-1) != targets).sum())
    low = 0.25 if errors >= MIN_ERRORS_TO_SHARPEN else 0.5

    def nll(t: float) -> float:
        return float(F.cross_entropy(logits / t, targets))

    grid = [t for t in (math.exp(x / 20) for x in range(-28, 61)) if t >= low] or [low]  # 0.25 .. 20
    best = min(grid, key=nll)
    fine = [t for t in (best * math.exp(x / 400) for x in range(-20, 21)) if t >= low]
    return round(min(fine, key=nll), 4)


def expected_calibration_error(probabilities: Sequence[Sequence[float]], targets: Sequence[int],
                               bins: int = ECE_BINS) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy, over equal-width bins."""
    n = len(targets)
    if not n:
        return 0.0
    totals = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum of confidence, sum of correct
    for probs, target in zip(probabilities, targets):
        best = max(range(len(probs)), key=probs.__getitem__)
        confidence = probs[best]
        b = min(bins - 1, int(confidence * bins))
        totals[b][0] += 1
        totals[b][1] += confidence
        totals[b][2] += float(best == target)
    return sum(abs(conf - correct) for count, conf, correct in totals if count) / n


def fold_temperature(model: Any, temperature: float) -> None:
    """Divide the final classification layer by ``temperature``: logits come out already scaled."""
    import torch

    layer = final_layer(model)
    with torch.no_grad():
        layer.weight.div_(temperature)
        if layer.bias is not None:
            layer.bias.div_(temperature)


def final_layer(model: Any) -> Any:
    """The Linear layer that produces the logits (``classifier`` in encoders, ``score`` in Llama)."""
    for name in ("classifier", "score"):
        layer = getattr(model, name, None)
        if layer is not None and hasattr(layer, "weight"):
            return layer
    raise TypeError(f"{type(model).__name__}: no classifier/score layer to calibrate")
