"""The blend: the encoder and the small models trained beside it, combined into one prediction.

A small transformer trained from scratch on a few thousand sentences generalises over words but
forgets exact phrases; a word n-gram model (ngrams.py) remembers phrases, and a BiLSTM over
words and their character n-grams (words.py) reads word order with an inductive bias the
transformer lacks at this size, and words unseen in training through their pieces. Their
mistakes differ, so their blend beats each of them (bench/README.md has the figures, and those
of what did not help: weights per member, a second BiLSTM).

The blend averages the members' log-probabilities (a product of experts) and divides by a
temperature fitted on the validation split, so its probabilities stay calibrated. Members are
chosen greedily on that split by log-loss: each is kept only if it lowers the blend's log-loss,
so on data where a member only adds noise the model does without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from appkit.errors import ModelError


class Member(Protocol):
    """A model blended with the encoder: label log-probabilities for texts, saved in the model folder."""

    def log_probabilities(self, texts: Sequence[str]) -> Any:
        """Natural-log probabilities, numpy (N, C)."""

    def save(self, directory: Path) -> None:
        """Write its files into ``directory`` (a model folder being staged)."""


def member_types() -> dict[str, Any]:
    """Member name (as stored in a model's metadata) -> class with ``load(directory)``."""
    from apps.sentiment.ngrams import NgramClassifier
    from apps.sentiment.words import WordLSTM

    return {"ngrams": NgramClassifier, "lstm": WordLSTM}


MEMBER_TITLES = {"encoder": "encoder", "ngrams": "n-grams", "lstm": "BiLSTM"}


def blend_logits(log_probs: Sequence[Any], temperature: float = 1.0) -> Any:
    """Logits of the blend (numpy (N, C)): the members' mean log-probability over ``temperature``."""
    return sum(log_probs) / (len(log_probs) * temperature)


def blend(encoder_logits: Any, member_log_probs: Sequence[Any], temperature: float) -> Any:
    """The blend's log-probabilities (numpy (N, C)) from the encoder's logits (torch (N, C)) and the members'."""
    from scipy.special import log_softmax

    return log_softmax(blend_logits([encoder_log_probs(encoder_logits), *member_log_probs], temperature), axis=1)


def encoder_log_probs(logits: Any) -> Any:
    """Log-probabilities (numpy float64 (N, C)) of an encoder's logits (torch (N, C))."""
    from scipy.special import log_softmax

    return log_softmax(logits.detach().double().numpy(), axis=1)


def choose_members(encoder_val_logits: Any, candidates: Mapping[str, Any], y_val: Sequence[int]) -> dict[str, Any]:
    """Pick the blend's members on validation and fit its temperature; returns the figures.

    ``encoder_val_logits``: the calibrated encoder's logits on the validation texts, torch (N, C).
    ``candidates``: member name -> its log-probabilities on the same texts, numpy (N, C), tried in
    order. A member joins when the blend's log-loss (each blend at its own fitted temperature)
    goes down. Log-loss, not accuracy, decides: on a few hundred validation sentences accuracy
    moves a point with a handful of them, and choosing by accuracy once dropped a member that
    was well ahead on unseen data (bench/README.md).
    Figures: ``members`` (chosen, possibly none), ``temperature``, the blend's ``val_accuracy``,
    ``val_nll``, ``ece``, ``val_macro_f1``, and ``alone``: each model's own accuracy and log-loss.
    """
    import numpy as np
    import torch
    from scipy.special import log_softmax

    from appkit.safety.metrics import macro_f1
    from apps.sentiment.calibration import expected_calibration_error, fit_temperature

    targets = np.asarray(y_val)

    def accuracy(log_probs: Any) -> float:
        return round(float((log_probs.argmax(axis=1) == targets).mean()), 4)

    def log_loss(log_probs: Any) -> float:
        return float(-log_probs[np.arange(len(targets)), targets].mean())

    def fitted(names: Sequence[str]) -> tuple[float, Any]:
        parts = [encoder, *(candidates[n] for n in names)]
        t = fit_temperature(torch.from_numpy(blend_logits(parts)), torch.from_numpy(targets))
        return t, log_softmax(blend_logits(parts, t), axis=1)

    encoder = encoder_log_probs(encoder_val_logits)
    alone = {"encoder": encoder, **candidates}
    members: list[str] = []
    temperature, best = 1.0, encoder
    for name in candidates:
        t, trial = fitted([*members, name])
        if log_loss(trial) < log_loss(best):
            members, temperature, best = [*members, name], t, trial
    return {"members": members, "temperature": temperature, "val_accuracy": accuracy(best),
            "val_nll": round(log_loss(best), 4),
            "ece": round(expected_calibration_error(np.exp(best).tolist(), targets.tolist()), 4),
            "val_macro_f1": round(macro_f1(list(y_val), best.argmax(axis=1).tolist(), encoder.shape[1]), 4),
            "alone": {n: {"val_accuracy": accuracy(lp), "val_nll": round(log_loss(lp), 4)} for n, lp in alone.items()}}


def blend_spec(metadata: Mapping[str, Any]) -> tuple[list[str], float]:
    """(member names, temperature) a saved model blends; ([], 1.0) for an encoder alone."""
    spec = metadata.get("blend")
    if spec:
        return list(spec["members"]), float(spec["temperature"])
    return [], 1.0


def load_members(path: Path, names: Sequence[str]) -> list[Any]:
    """Load the named members from a model folder; ModelError for a name this appkit does not know."""
    types = member_types()
    unknown = [n for n in names if n not in types]
    if unknown:
        raise ModelError(f"{path}: the model blends {', '.join(unknown)}, which this appkit version does not know; "
                         "upgrade appkit or train the model again.")
    return [types[n].load(path) for n in names]
