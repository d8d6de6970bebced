"""appkit's classifier: shared normalisation, a split that holds out a style, n-grams, the lexicon as evidence, the blend."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appkit.errors import SafetyError
from appkit.safety.blend import choose_blend
from appkit.safety.data import holdout_split
from appkit.safety.ngrams import WEIGHTS_FILE, NgramModel
from appkit.safety.normalise import normalise


def test_normalise_removes_the_platform_and_keeps_the_words() -> None:
    tweet = "RT @some_user: You are SOOOOO dumb &amp;#8220;lol&#8221; http://t.co/xyz #fail \U000f0001"
    assert normalise(tweet) == "you are soo dumb \u201clol\u201d fail"
    assert normalise("Where is my order?") == "where is my order?"
    assert normalise("") == "" and normalise("   ") == ""


def test_holdout_split_keeps_the_longest_texts_for_validation() -> None:
    texts = [f"text {'x' * i}" for i in range(100)]
    train, val = holdout_split(texts, 0.2, seed=3)
    assert sorted(train + val) == list(range(100)) and len(val) == 20
    assert set(range(90, 100)) <= set(val)  # the ten longest
    assert max(train) < 90 and len(set(val) - set(range(90, 100))) == 10  # and ten at random


def _fit(toxic_words: list[str], n: int = 200, seed: int = 0) -> NgramModel:
    rng = random.Random(seed)
    clean = ["where is my order", "thanks for the help", "my parcel is late", "can I get a refund",
             "the app does not open", "please change my address"]
    texts, targets = [], []
    for i in range(n):
        if i % 3 == 0:
            texts.append(f"you {rng.choice(toxic_words)} {rng.choice(['', 'now', 'again'])}")
            targets.append([1.0])
        else:
            texts.append(rng.choice(clean))
            targets.append([0.0])
    return NgramModel.fit(texts, targets, ["toxicity"])


def test_character_ngrams_carry_to_spellings_never_seen() -> None:
    model = _fit(["blorkhead", "snarfwit"])  # abuse the lexicon does not know
    z = model.logits(["you bl0rkhead", "you snarfwits", "you plumtree"])[:, 0]  # a word as new, sharing no pieces
    assert z[0] > z[2] + 0.5 and z[1] > z[2] + 0.5


def test_the_lexicon_is_evidence_for_words_the_data_never_had() -> None:
    model = _fit(["idiot", "moron", "bastard"])  # in the lexicon; "cretin" and "scumbag" never in training
    z = model.logits(["you cretin", "you scumbag", "you customer"])[:, 0]
    assert z[0] > z[2] + 1 and z[1] > z[2] + 1


def test_a_model_hashed_differently_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = _fit(["idiot"], n=30)
    model.save(tmp_path)
    assert np.allclose(NgramModel.load(tmp_path).logits(["you idiot"]), model.logits(["you idiot"]))
    from safetensors import safe_open

    with safe_open(str(tmp_path / WEIGHTS_FILE), framework="numpy") as f:
        spec = json.loads(f.metadata()["appkit"])
    spec["probe"] = [1, 2, 3]
    save_file(load_file(str(tmp_path / WEIGHTS_FILE)), str(tmp_path / WEIGHTS_FILE), metadata={"appkit": json.dumps(spec)})
    with pytest.raises(SafetyError, match="made with other features .*probe"):
        NgramModel.load(tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"junk")
    with pytest.raises(SafetyError, match="cannot be read"):
        NgramModel.load(tmp_path)


def test_the_blend_keeps_a_member_only_if_it_lowers_validation_log_loss() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    targets = [[float(v)] for v in y]
    first = (2 * y - 1 + rng.normal(0, 2.0, 400))[:, None]  # weakly informative
    helpful = (2 * y - 1 + rng.normal(0, 1.0, 400))[:, None]  # independent and better
    noise = rng.normal(0, 1.0, 400)[:, None]
    combination, figures = choose_blend({"ngrams": first, "encoder": helpful}, targets, ["toxicity"])
    assert figures["members"] == ["ngrams", "encoder"] and combination["toxicity"].weights["encoder"] > 0
    combination, figures = choose_blend({"ngrams": first, "encoder": noise}, targets, ["toxicity"])
    assert figures["members"] == ["ngrams"] and set(combination["toxicity"].weights) == {"ngrams"}
    assert figures["alone"]["encoder"] > figures["alone"]["ngrams"]


def test_a_blend_with_the_encoder_saves_and_reloads(tiny_checkpoint: Any, tiny_encoder: Any, tmp_path: Path) -> None:
    from appkit.safety.blend import BlendClassifier, Combination, load_blend
    from appkit.safety.data import LabelledData
    from appkit.safety.encoder import EncoderMember
    from appkit.safety.train import ClassifierOptions, save_classifier

    path, encoder = tiny_encoder
    members = {"ngrams": tiny_checkpoint.classifier.members["ngrams"], "encoder": EncoderMember.load(path)}
    combination = {label: Combination({"ngrams": 0.7, "encoder": 0.4}, -0.1) for label in ("toxicity", "insult")}
    blend = BlendClassifier("trained:both", ("toxicity", "insult"), members, combination)
    labelled = LabelledData([], [], ("toxicity", "insult"), "multilabel", "generated")
    saved = save_classifier(blend, labelled, tmp_path / "both", {}, ClassifierOptions(encoder=True), encoder)
    assert {p.name for p in saved.iterdir()} == {"safety.json", "ngrams.safetensors", "detoxify.ckpt", "hf"}
    texts = ["you are an idiot", "where is my order", "word " * 400 + "moron"]  # the last in windows
    loaded = load_blend(saved)
    assert list(loaded.members) == ["ngrams", "encoder"]
    for a, b in zip(loaded.score(texts), blend.score(texts)):
        assert a == pytest.approx(b, abs=1e-5)
    z_n, z_e = members["ngrams"].logits(texts)[:, 0], members["encoder"].logits(texts)[:, 0]
    assert np.allclose(loaded.logits(texts)[:, 0], 0.7 * z_n + 0.4 * z_e - 0.1, atol=1e-4)


def test_remembered_word_ngrams_are_scikit_learns_char_wb() -> None:
    from sklearn.feature_extraction.text import HashingVectorizer

    from appkit.safety.ngrams import CHAR_FEATURES, CHAR_NGRAMS, _hashers

    texts = ["you are an id10t", "  two  spaces\tand tabs\n", "", "a", "you are an id10t again, you"]
    plain = HashingVectorizer(n_features=CHAR_FEATURES, ngram_range=CHAR_NGRAMS, analyzer="char_wb",
                              alternate_sign=False, norm=None, lowercase=False)
    ours = _hashers()[1]
    for _ in range(2):  # the second time from memory
        assert (ours.transform(texts) != plain.transform(texts)).nnz == 0
