"""A word n-gram logistic regression, one of the models blended with the encoder (blend.py).

A linear model on word 1-3-grams remembers exact phrases (Wang & Manning 2012, "Baselines and
bigrams": such models are hard to beat on short sentiment texts); on SST-2 it scores above
the small encoder alone (bench/README.md). It trains in seconds.

It is stored beside the Hugging Face model as one safetensors file, with how texts become
features in its header (member_io.py).
"""

from __future__ import annotations

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
# of strings); on SST-2, 2^20 features score as a vocabulary does.
FEATURES = 2**20
REGULARISATION = 1.0  # sklearn's C; the accuracy hardly moves between 0.3 and 3
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
        from scipy.special import log_softmax

        scores = np.asarray(self._features.transform(texts) @ self.weights.T + self.bias, dtype=np.float64)
        if self.n_classes == 2:  # sklearn keeps one row for two classes: the second class's logit
            scores = np.concatenate([np.zeros_like(scores), scores], axis=1)
        return log_softmax(scores, axis=1)

    def save(self, directory: Path) -> None:
        """Write the weights, and how texts become features, into ``directory`` (a model folder being staged)."""
        from apps.sentiment.member_io import write_member_file

        spec = {"n_classes": self.n_classes, "max_ngram": self.max_ngram, "token_pattern": self.token_pattern}
        write_member_file(directory / WEIGHTS_FILE, {"weights": self.weights, "bias": self.bias}, spec, "numpy")

    @classmethod
    def load(cls, directory: Path) -> NgramClassifier:
        """Read what ``save`` wrote; ModelError if it is missing or does not fit together."""
        from apps.sentiment.member_io import read_member_file, reading_member

        with reading_member(directory, "n-gram model"):
            spec, arrays = read_member_file(directory / WEIGHTS_FILE, "numpy")
            weights, bias = arrays["weights"], arrays["bias"]
            model = cls(weights, bias, int(spec["n_classes"]), int(spec["max_ngram"]), str(spec["token_pattern"]))
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
