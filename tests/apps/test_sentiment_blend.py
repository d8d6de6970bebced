"""The blend of the sentiment encoder with the models trained beside it: which are kept, and what is saved."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from apps.sentiment.blend import blend_spec, choose_members, load_members
from apps.sentiment.ngrams import NgramClassifier
from tests.apps.sentiment_data import sentences, write_csv

LABELS = ("negative", "neutral", "positive")


def _validation() -> tuple[list[str], list[int]]:
    val = sentences(90, seed=3)
    return [t for t, _ in val], [LABELS.index(label) for _, label in val]


def test_a_member_joins_only_when_it_lowers_the_validation_log_loss() -> None:
    import torch

    texts, y = _validation()
    train = sentences(240, seed=0)
    grams = NgramClassifier.fit([t for t, _ in train], [LABELS.index(label) for _, label in train], 3)
    backwards = NgramClassifier.fit(texts, [(label + 1) % 3 for label in y], 3)
    right = torch.nn.functional.one_hot(torch.tensor(y), 3).float()  # an encoder right but unsure: logits 0/1

    figures = choose_members(right, {"ngrams": grams.log_probabilities(texts),
                                     "lstm": backwards.log_probabilities(texts)}, y)
    assert figures["members"] == ["ngrams"]  # the sure, right n-grams help; the backwards model would not
    assert figures["val_accuracy"] == 1.0 and figures["val_nll"] < figures["alone"]["encoder"]["val_nll"]
    assert figures["alone"]["lstm"]["val_accuracy"] == 0.0 and 0.25 <= figures["temperature"] <= 20

    # A model that learned the labels backwards drags the encoder down: the encoder stays alone.
    alone = choose_members(right * 4, {"ngrams": backwards.log_probabilities(texts)}, y)
    assert alone["members"] == [] and alone["temperature"] == 1.0
    assert alone["val_nll"] == alone["alone"]["encoder"]["val_nll"]


def test_a_model_names_its_members_and_an_unknown_member_is_refused(tmp_path: Path) -> None:
    from appkit.errors import ModelError

    assert blend_spec({"blend": {"members": ["ngrams", "lstm"], "temperature": 0.9}}) == (["ngrams", "lstm"], 0.9)
    assert blend_spec({"blend": None}) == ([], 1.0)
    with pytest.raises(ModelError, match="does not know"):
        load_members(tmp_path, ["transformer-xl"])


def test_training_saves_exactly_the_members_it_blends(tmp_path: Path) -> None:
    from appkit.config import load_settings
    from apps.sentiment import ngrams, words
    from apps.sentiment.analyzer import SentimentAnalyzer
    from apps.sentiment.train import SentimentOptions, train_sentiment

    data = write_csv(tmp_path / "labeled.csv", sentences(120, seed=0))
    settings = load_settings(home=tmp_path / "home", device="cpu",
                             database_url=f"sqlite:///{tmp_path / 'home' / 'appkit.db'}")
    files_of = {"ngrams": ngrams.WEIGHTS_FILE, "lstm": words.WEIGHTS_FILE}
    for extra in (True, False):
        lines: list[str] = []
        options = SentimentOptions(hidden_size=32, layers=1, heads=2, max_length=32, max_steps=20, progress=False,
                                   ngrams=extra, lstm=extra)
        trained = train_sentiment(data, name=f"blend-{extra}", options=options, settings=settings, log=lines.append)
        files = {p.name for p in trained.path.iterdir()}
        meta = json.loads((trained.path / "appkit.json").read_text())
        members = (meta["blend"] or {}).get("members", [])
        assert ("ngrams" in members) == extra  # a 20-step encoder is weak; these words alone decide the label
        assert {name for name, file in files_of.items() if file in files} == set(members)
        assert (meta["metrics"]["blend"]["members"] if extra else meta["metrics"].get("blend")) == (members or None)
        analyzer = SentimentAnalyzer.load(trained.path)
        assert analyzer.describe()["blend"] == (["encoder", *members] if members else [])
        result = analyzer.analyze_one("the refund was awful")
        assert math.isclose(sum(result.probabilities.values()), 1.0, abs_tol=1e-6)
        trained_models = [line for line in lines if line.startswith(("n-gram model:", "BiLSTM: trained"))]
        assert len(trained_models) == (2 if extra else 0), "--no-ngrams --no-lstm trains neither"
        assert SentimentAnalyzer.load(trained.path, blend=False).describe()["blend"] == []
