"""A word n-gram logistic regression trained beside the encoder, and the blend of the two.

A small encoder trained from scratch on a few thousand sentences generalises over words, but
it forgets exact phrases; a linear model on word 1-3-grams remembers them. On SST-2 each alone
scores about the same (encoder 80.4%, n-grams 81.8% on dev) and their errors differ, so the
blend is better than either (83.1-83.6%, `bench/sentiment_sst2.py`). Wang & Manning 2012
("Baselines and bigrams") found the same of n-gram models beside neural ones on short texts.

The blend averages the two models' log-probabilities (a product of experts) and divides by a
temperature fitted on the validation split, so its probabilities stay calibrated. The n-gram
model is stored beside the Hugging Face model as plain arrays (safetensors) and a vocabulary
(JSON), not a pickle: loading a model folder never runs code from it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from appkit.errors import ModelError

WEIGHTS_FILE = "ngrams.safetensors"
VOCABULARY_FILE = "ngrams.json"
# Words and single punctuation marks, lower-cased: "Great!" is "great" and "!" whatever the spacing.
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
MAX_NGRAM = 3
MIN_DOCUMENTS = 2  # an n-gram seen in one text only is noise to a linear model, and most of the vocabulary
MAX_FEATURES = 300_000  # bounds the saved size (~10 MB) on large training files: the commonest n-grams are kept
REGULARISATION = 1.0  # sklearn's C; 0.3-3 all scored within 0.5 point on SST-2 dev


@dataclass
class NgramClassifier:
    """Logistic regression over binary word 1-3-gram features; probabilities over ``n_classes`` labels."""

    vocabulary: list[str]  # n-gram by feature index
    weights: Any  # numpy (C, V); a single row for two labels (sklearn's binary form)
    bias: Any  # numpy (C,)
    n_classes: int

    @classmethod
    def fit(cls, texts: Sequence[str], targets: Sequence[int], n_classes: int, seed: int = 0) -> NgramClassifier:
        """Train on ``texts`` with integer ``targets`` in [0, n_classes)."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        try:
            vectorizer = _vectorizer(min_df=MIN_DOCUMENTS, max_features=MAX_FEATURES)
            features = vectorizer.fit_transform(texts)
        except ValueError:  # a handful of texts can share no n-gram at all: keep every one
            vectorizer = _vectorizer(max_features=MAX_FEATURES)
            features = vectorizer.fit_transform(texts)
        model = LogisticRegression(C=REGULARISATION, max_iter=2000, random_state=seed).fit(features, targets)
        vocabulary = [""] * len(vectorizer.vocabulary_)
        for gram, index in vectorizer.vocabulary_.items():
            vocabulary[index] = gram
        # C order: safetensors writes an array's buffer as is, and sklearn's multinomial coef_ is Fortran-ordered.
        return cls(vocabulary, np.ascontiguousarray(model.coef_, dtype=np.float32),
                   np.ascontiguousarray(model.intercept_, dtype=np.float32), n_classes)

    def log_probabilities(self, texts: Sequence[str]) -> Any:
        """Natural-log probabilities, numpy (N, C)."""
        import numpy as np

        scores = self._features.transform(texts) @ self.weights.T + self.bias  # (N, C) or (N, 1)
        scores = np.asarray(scores, dtype=np.float64)
        if self.n_classes == 2:  # sklearn keeps one row for two classes: the positive class's logit
            scores = np.concatenate([np.zeros_like(scores), scores], axis=1)
        return log_softmax(scores)

    @cached_property
    def _features(self) -> Any:
        """The vectorizer over the saved vocabulary, built once: building it takes ~90 ms for 160k n-grams."""
        vectorizer = _vectorizer(vocabulary={gram: i for i, gram in enumerate(self.vocabulary)})
        vectorizer.transform([""])  # validates the vocabulary now, so threads share a ready, read-only vectorizer
        return vectorizer

    def save(self, directory: Path) -> None:
        """Write the weights and vocabulary into ``directory`` (a model folder being staged)."""
        from safetensors.numpy import save_file

        save_file({"weights": self.weights, "bias": self.bias}, str(directory / WEIGHTS_FILE))
        (directory / VOCABULARY_FILE).write_text(
            json.dumps({"n_classes": self.n_classes, "max_ngram": MAX_NGRAM, "token_pattern": TOKEN_PATTERN,
                        "vocabulary": self.vocabulary}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> NgramClassifier:
        """Read what ``save`` wrote; ModelError if it is missing or does not fit together."""
        from safetensors.numpy import load_file

        try:
            arrays = load_file(str(directory / WEIGHTS_FILE))
            spec = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
            model = cls(list(spec["vocabulary"]), arrays["weights"], arrays["bias"], int(spec["n_classes"]))
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{directory}: the n-gram half of the sentiment model cannot be read ({e}); "
                             "train the model again.") from None
        if model.weights.shape[1] != len(model.vocabulary):
            raise ModelError(f"{directory}: {VOCABULARY_FILE} has {len(model.vocabulary)} n-grams but "
                             f"{WEIGHTS_FILE} has weights for {model.weights.shape[1]}; train the model again.")
        return model


def blend_logits(encoder_log_probs: Any, ngram_log_probs: Any, temperature: float = 1.0) -> Any:
    """Logits of the blend (numpy (N, C)): the two models' mean log-probability over ``temperature``."""
    return (encoder_log_probs + ngram_log_probs) / (2 * temperature)


def log_softmax(logits: Any) -> Any:
    """Row-wise log-softmax of a numpy (N, C) array."""
    import numpy as np

    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _vectorizer(**options: Any) -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(ngram_range=(1, MAX_NGRAM), binary=True, lowercase=True, token_pattern=TOKEN_PATTERN,
                           dtype=np.float32, **options)


def fit_blend(encoder_val_logits: Any, ngram: NgramClassifier, val_texts: Sequence[str],
              y_val: Sequence[int]) -> dict[str, Any]:
    """Fit the blend's temperature on validation and say whether the blend beats the encoder alone.

    ``encoder_val_logits``: the (calibrated) encoder's logits on the validation texts, torch (N, C).
    The blend is kept when its validation accuracy is at least the encoder's: on data where the
    n-grams only add noise the model stays the encoder alone.
    """
    import numpy as np
    import torch

    from appkit.safety.metrics import macro_f1
    from apps.sentiment.calibration import expected_calibration_error, fit_temperature

    targets = np.asarray(y_val)
    encoder = log_softmax(encoder_val_logits.detach().double().numpy())
    grams = ngram.log_probabilities(val_texts)
    temperature = fit_temperature(torch.from_numpy(blend_logits(encoder, grams)), torch.from_numpy(targets))
    blended = log_softmax(blend_logits(encoder, grams, temperature))

    def accuracy(log_probs: Any) -> float:
        return round(float((log_probs.argmax(axis=1) == targets).mean()), 4)

    figures = {"encoder_val_accuracy": accuracy(encoder), "ngram_val_accuracy": accuracy(grams),
               "val_accuracy": accuracy(blended), "temperature": temperature, "ngrams": len(ngram.vocabulary),
               "ece": round(expected_calibration_error(np.exp(blended).tolist(), targets.tolist()), 4),
               "val_macro_f1": round(macro_f1(list(y_val), blended.argmax(axis=1).tolist(), encoder.shape[1]), 4)}
    figures["used"] = figures["val_accuracy"] >= figures["encoder_val_accuracy"]
    return figures
