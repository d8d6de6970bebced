"""A word n-gram logistic regression trained beside the encoder, and the blend of the two.

A small encoder trained from scratch on a few thousand sentences generalises over words, but
it forgets exact phrases; a linear model on word 1-3-grams remembers them (Wang & Manning 2012,
"Baselines and bigrams": such models are hard to beat on short sentiment texts). On SST-2 dev
the encoder alone scored 79.4-80.2%, the n-grams alone 82.2-82.7% and the blend 81.8-83.7%
over two seeds (`bench/sentiment_sst2.py`, `appkit eval`): the blend is always well above the
encoder, and above or below the n-grams alone by about a point.

The blend averages the two models' log-probabilities (a product of experts) and divides by a
temperature fitted on the validation split, so its probabilities stay calibrated. The n-gram
model is stored beside the Hugging Face model as plain arrays (safetensors, with how texts
become features in its header), not a pickle: loading a model folder never runs code from it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from appkit.errors import ModelError

WEIGHTS_FILE = "ngrams.safetensors"
# Words and single punctuation marks, lower-cased: "Great!" is "great" and "!" whatever the spacing.
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
MAX_NGRAM = 3
# N-grams are hashed into this many features, so no vocabulary is built or stored: memory stays
# bounded on any training file (a 1-3-gram vocabulary of a large corpus runs to tens of millions
# of strings). SST-2's 160k distinct n-grams: 2^20 features scored as a vocabulary did on dev.
FEATURES = 2**20
REGULARISATION = 1.0  # sklearn's C; 0.3-3 all scored within 0.5 point on SST-2 dev
MAX_TEXTS = 200_000  # the n-gram model learns from a sample of larger files (its fit's memory grows with the texts)


@dataclass
class NgramClassifier:
    """Logistic regression over hashed binary word 1-3-gram features; probabilities over ``n_classes`` labels."""

    weights: Any  # numpy (C, FEATURES); a single row for two labels (sklearn's binary form)
    bias: Any  # numpy (C,)
    n_classes: int
    max_ngram: int = MAX_NGRAM
    token_pattern: str = TOKEN_PATTERN

    @classmethod
    def fit(cls, texts: Sequence[str], targets: Sequence[int], n_classes: int, *, seed: int = 0,
            log: Callable[[str], None] | None = None) -> NgramClassifier:
        """Train on ``texts`` with integer ``targets`` in [0, n_classes) (a sample of MAX_TEXTS if more)."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        if len(texts) > MAX_TEXTS:
            chosen = sorted(random.Random(seed).sample(range(len(texts)), MAX_TEXTS))
            texts, targets = [texts[i] for i in chosen], [targets[i] for i in chosen]
            if log:
                log(f"n-gram model: learning from a sample of {MAX_TEXTS:,} texts")
        if len(set(targets)) != n_classes:  # sklearn would fit fewer rows and the labels would shift
            raise ValueError(f"its training texts hold {len(set(targets))} of the {n_classes} labels")
        fitted = LogisticRegression(C=REGULARISATION, max_iter=2000, random_state=seed)
        fitted.fit(featurizer(FEATURES, MAX_NGRAM, TOKEN_PATTERN).transform(texts), list(targets))
        # C order: safetensors writes an array's buffer as is, and sklearn's multinomial coef_ is Fortran-ordered.
        return cls(np.ascontiguousarray(fitted.coef_, dtype=np.float32),
                   np.ascontiguousarray(fitted.intercept_, dtype=np.float32), n_classes)

    @cached_property
    def _features(self) -> Any:
        return featurizer(self.weights.shape[1], self.max_ngram, self.token_pattern)

    def log_probabilities(self, texts: Sequence[str]) -> Any:
        """Natural-log probabilities, numpy (N, C)."""
        import numpy as np

        scores = np.asarray(self._features.transform(texts) @ self.weights.T + self.bias, dtype=np.float64)
        if self.n_classes == 2:  # sklearn keeps one row for two classes: the second class's logit
            scores = np.concatenate([np.zeros_like(scores), scores], axis=1)
        return log_softmax(scores)

    def save(self, directory: Path) -> None:
        """Write the weights, and how texts become features, into ``directory`` (a model folder being staged)."""
        from safetensors.numpy import save_file

        spec = {"n_classes": self.n_classes, "max_ngram": self.max_ngram, "token_pattern": self.token_pattern}
        save_file({"weights": self.weights, "bias": self.bias}, str(directory / WEIGHTS_FILE),
                  metadata={"appkit": json.dumps(spec)})

    @classmethod
    def load(cls, directory: Path) -> NgramClassifier:
        """Read what ``save`` wrote; ModelError if it is missing or does not fit together."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(directory / WEIGHTS_FILE), framework="numpy") as f:
                spec = json.loads((f.metadata() or {})["appkit"])
                weights, bias = f.get_tensor("weights"), f.get_tensor("bias")
            model = cls(weights, bias, int(spec["n_classes"]), int(spec["max_ngram"]), str(spec["token_pattern"]))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
            raise ModelError(f"{directory}: the n-gram half of the sentiment model cannot be read ({e}); "
                             "train the model again.") from None
        rows = 1 if model.n_classes == 2 else model.n_classes
        if weights.shape[0] != rows or bias.shape != (rows,):
            raise ModelError(f"{directory / WEIGHTS_FILE}: weights for {weights.shape[0]} labels, expected {rows} "
                             f"for {model.n_classes}; train the model again.")
        return model


def featurizer(features: int, max_ngram: int, token_pattern: str) -> Any:
    """Texts -> sparse (N, features) rows of 0/1: which hashed word 1..max_ngram-grams each text has."""
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=features, ngram_range=(1, max_ngram), binary=True, norm=None,
                             alternate_sign=False, lowercase=True, token_pattern=token_pattern, dtype=np.float32)


def blend_logits(encoder_log_probs: Any, ngram_log_probs: Any, temperature: float = 1.0) -> Any:
    """Logits of the blend (numpy (N, C)): the two models' mean log-probability over ``temperature``."""
    return (encoder_log_probs + ngram_log_probs) / (2 * temperature)


def blend(encoder_logits: Any, ngram_log_probs: Any, temperature: float) -> Any:
    """The blend's log-probabilities (numpy (N, C)) from the encoder's logits (torch (N, C)) and the n-grams'."""
    return log_softmax(blend_logits(encoder_log_probs(encoder_logits), ngram_log_probs, temperature))


def encoder_log_probs(logits: Any) -> Any:
    """Log-probabilities (numpy float64 (N, C)) of an encoder's logits (torch (N, C))."""
    return log_softmax(logits.detach().double().numpy())


def log_softmax(logits: Any) -> Any:
    """Row-wise log-softmax of a numpy (N, C) array."""
    import numpy as np

    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def fit_blend(encoder_val_logits: Any, ngram: NgramClassifier, val_texts: Sequence[str],
              y_val: Sequence[int]) -> dict[str, Any]:
    """Fit the blend's temperature on validation and say whether the blend beats the encoder alone.

    ``encoder_val_logits``: the (calibrated) encoder's logits on the validation texts, torch (N, C).
    The blend is kept when its validation log-loss is at most the encoder's: on data where the
    n-grams only add noise the model stays the encoder alone. Log-loss, not accuracy, decides:
    on SST-2's ~700 validation sentences accuracy moves a point with 7 sentences, and a run
    whose encoder happened to score 0.6 point above the blend there dropped a blend that was
    2.5 points better on dev (log-loss: blend 0.390, encoder 0.425).
    """
    import numpy as np
    import torch

    from appkit.safety.metrics import macro_f1
    from apps.sentiment.calibration import expected_calibration_error, fit_temperature

    targets = np.asarray(y_val)
    encoder = encoder_log_probs(encoder_val_logits)
    grams = ngram.log_probabilities(val_texts)
    temperature = fit_temperature(torch.from_numpy(blend_logits(encoder, grams)), torch.from_numpy(targets))
    blended = blend(encoder_val_logits, grams, temperature)

    def accuracy(log_probs: Any) -> float:
        return round(float((log_probs.argmax(axis=1) == targets).mean()), 4)

    def log_loss(log_probs: Any) -> float:
        return round(float(-log_probs[np.arange(len(targets)), targets].mean()), 4)

    figures = {"encoder_val_accuracy": accuracy(encoder), "ngram_val_accuracy": accuracy(grams),
               "val_accuracy": accuracy(blended), "encoder_val_nll": log_loss(encoder), "ngram_val_nll": log_loss(grams),
               "val_nll": log_loss(blended), "temperature": temperature,
               "ece": round(expected_calibration_error(np.exp(blended).tolist(), targets.tolist()), 4),
               "val_macro_f1": round(macro_f1(list(y_val), blended.argmax(axis=1).tolist(), encoder.shape[1]), 4)}
    figures["used"] = figures["val_nll"] <= figures["encoder_val_nll"]
    return figures
