"""The word n-gram model trained beside the sentiment encoder, and when the blend is used."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from appkit.errors import ModelError
from apps.sentiment.ngrams import WEIGHTS_FILE, NgramClassifier, fit_blend
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


def test_the_blend_is_kept_only_when_its_validation_log_loss_is_no_worse_than_the_encoders() -> None:
    import torch

    model, _ = _fit()
    val = sentences(90, seed=3)
    texts, y = [t for t, _ in val], [LABELS.index(label) for _, label in val]
    right = torch.nn.functional.one_hot(torch.tensor(y), 3).float() * 4  # an encoder sure and right

    agreeing = fit_blend(right, model, texts, y)
    assert agreeing["used"] and agreeing["val_accuracy"] == agreeing["encoder_val_accuracy"] == 1.0
    assert agreeing["ngram_val_accuracy"] == 1.0 and 0.25 <= agreeing["temperature"] <= 20

    # An n-gram model that learned the labels backwards drags a good encoder down: not used.
    backwards = NgramClassifier.fit(texts, [(label + 1) % 3 for label in y], 3)
    unsure = right / 8  # the encoder right but unsure: the confident wrong n-grams win the mean
    verdict = fit_blend(unsure, backwards, texts, y)
    assert not verdict["used"] and verdict["val_accuracy"] < verdict["encoder_val_accuracy"] == 1.0
    assert verdict["val_nll"] > verdict["encoder_val_nll"]


def test_training_saves_the_ngram_half_only_when_it_is_used(tmp_path: Path) -> None:
    from appkit.config import load_settings
    from apps.sentiment.analyzer import SentimentAnalyzer
    from apps.sentiment.train import SentimentOptions, train_sentiment

    data = write_csv(tmp_path / "labeled.csv", sentences(120, seed=0))
    settings = load_settings(home=tmp_path / "home", device="cpu",
                             database_url=f"sqlite:///{tmp_path / 'home' / 'appkit.db'}")
    lines: list[str] = []
    for ngrams in (True, False):
        options = SentimentOptions(hidden_size=32, layers=1, heads=2, max_length=32, max_steps=20, progress=False,
                                   ngrams=ngrams)
        trained = train_sentiment(data, name=f"ngrams-{ngrams}", options=options, settings=settings, log=lines.append)
        files = {p.name for p in trained.path.iterdir()}
        meta = json.loads((trained.path / "appkit.json").read_text())
        used = bool(trained.metrics.get("ngrams", {}).get("used"))
        assert used == ngrams  # a 20-step encoder is weak; these words alone decide the label
        assert (WEIGHTS_FILE in files) == used == bool(meta["ngrams"])
        analyzer = SentimentAnalyzer.load(trained.path)
        assert analyzer.describe()["ngrams"] == used
        result = analyzer.analyze_one("the refund was awful")
        assert math.isclose(sum(result.probabilities.values()), 1.0, abs_tol=1e-6)
    assert sum("n-gram model:" in line for line in lines) == 1, "trained once: --no-ngrams trains none"
