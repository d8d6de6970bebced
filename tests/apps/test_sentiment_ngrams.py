"""The word n-gram model trained beside the sentiment encoder: it learns, saves, loads and fails clearly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from appkit.errors import ModelError
from apps.sentiment.ngrams import WEIGHTS_FILE, NgramClassifier
from tests.apps.sentiment_data import sentences, write_csv

LABELS = ("negative", "neutral", "positive")


def _fit(n: int = 240, labels: tuple[str, ...] = LABELS) -> tuple[NgramClassifier, list[tuple[str, str]]]:
    rows = sentences(n, seed=0, labels=labels)
    return NgramClassifier.fit([t for t, _ in rows], [labels.index(y) for _, y in rows], len(labels)), rows


@pytest.mark.parametrize("labels", [("negative", "positive"), LABELS])
def test_it_learns_words_and_survives_a_save_and_load(tmp_path: Path, labels: tuple[str, ...]) -> None:
    import numpy as np

    model, _ = _fit(labels=labels)
    held_out = sentences(60, seed=7, labels=labels)
    texts = [t for t, _ in held_out]
    log_probs = model.log_probabilities(texts)
    assert log_probs.shape == (60, len(labels))
    assert np.allclose(np.exp(log_probs).sum(axis=1), 1.0)
    assert [labels[i] for i in log_probs.argmax(axis=1)] == [y for _, y in held_out]
    # Case and spacing around punctuation do not change the words it sees.
    assert model.log_probabilities(["The staff was RUDE!"]) == pytest.approx(model.log_probabilities(["the staff was rude !"]))

    model.save(tmp_path)
    assert NgramClassifier.load(tmp_path).log_probabilities(texts) == pytest.approx(log_probs, abs=1e-6)


def test_it_refuses_texts_that_lack_a_label_rather_than_shift_the_others() -> None:
    rows = sentences(60, seed=0, labels=("negative", "positive"))
    with pytest.raises(ValueError, match="2 of the 3 labels"):
        NgramClassifier.fit([t for t, _ in rows], [0 if y == "negative" else 2 for _, y in rows], 3)


def test_a_damaged_ngram_file_is_a_clear_model_error(tmp_path: Path) -> None:
    model, _ = _fit()  # three labels
    model.n_classes = 4  # saved as if for four: the weights have three rows
    model.save(tmp_path)
    with pytest.raises(ModelError, match="weights for 3 labels, expected 4"):
        NgramClassifier.load(tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot be read"):
        NgramClassifier.load(tmp_path)
    (tmp_path / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match="cannot be read"):
        NgramClassifier.load(tmp_path)
