"""Backends: the shared contract, detoxify official offline, self-trained round trip, auto selection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError, SafetyError
from appkit.safety.backends import choose_backend, get_classifier, load_trained_classifier
from appkit.safety.detox import OFFICIAL, hf_hub_cache, load_official, load_trained, official_cached, torch_hub_dir
from appkit.safety.lexicon import LexiconClassifier

ODD = ["", "   ", "😀🔥😀", "Das Paket ist nicht angekommen", "配送はいつですか", "word " * 3000 + "idiot"]


def _check_contract(clf: Any) -> None:
    assert clf.score([]) == []
    one = clf.score(["where is my order"])
    assert isinstance(one, list) and len(one) == 1
    assert set(one[0]) == set(clf.labels)
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in one[0].values())
    many = clf.score(ODD)
    assert len(many) == len(ODD)
    for scores in many:
        assert set(scores) == set(clf.labels)
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores.values())
    assert all(v == 0.0 for v in many[0].values())  # empty text: nothing to flag


def test_lexicon_contract() -> None:
    _check_contract(LexiconClassifier())


def test_trained_contract(tiny_checkpoint: Any) -> None:
    clf = load_trained_classifier(tiny_checkpoint.path)
    assert clf.name == "trained:tiny"
    assert clf.labels == ("toxicity", "insult")
    _check_contract(clf)


def test_encoder_contract(tiny_encoder: Any) -> None:
    clf = load_trained(tiny_encoder[0])
    assert clf.name == "trained:tiny" and clf.labels == ("toxicity", "insult")
    _check_contract(clf)



def test_long_texts_are_scored_in_windows_up_to_the_end() -> None:
    from appkit.safety.detox import MAX_WINDOWS, _windows

    text = " ".join(f"w{i}" for i in range(200))
    windows = _windows(text, 60)
    assert windows[0].startswith("w0 ") and windows[-1].endswith("w199")
    assert all(len(w) <= 60 for w in windows)
    assert all(f"w{i}" in " ".join(windows).split() for i in range(200))  # overlapping, nothing skipped
    huge = _windows("word " * 20_000 + "idiot", 60)
    assert len(huge) == MAX_WINDOWS and huge[-1].endswith("idiot")
    assert _windows("short", 60) == ["short"]


def test_trained_model_learned_something(tiny_checkpoint: Any) -> None:
    m = tiny_checkpoint.metrics["labels"]["toxicity"]
    assert m["roc_auc"] > 0.9
    clf = load_trained_classifier(tiny_checkpoint.path)
    toxic, clean = clf.score(["shut up you moron", "where is my order"])
    assert toxic["toxicity"] > 0.5 > clean["toxicity"]


@pytest.mark.e2e  # a fresh appkit process: kept out of the quick tier, as the other process tests
def test_encoder_round_trips_through_detoxify_offline(tiny_encoder: Any, tmp_path: Path) -> None:
    """A fresh process, HF_HUB_OFFLINE=1, empty caches: plain detoxify.Detoxify gives the same scores."""
    from appkit.safety.encoder import predict

    path, encoder = tiny_encoder
    texts = ["you are an idiot", "thanks for the help", "😀", "x"]  # normalised already
    expected = predict(encoder.model, encoder.tokenizer, ("toxicity", "insult"), texts)
    code = (
        "import json, sys; from detoxify import Detoxify; "
        f"d = Detoxify(checkpoint={str(path / 'detoxify.ckpt')!r}, "
        f"huggingface_config_path={str(path / 'hf')!r}); "
        f"print(json.dumps(d.predict({texts!r})))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf"),
           "TORCH_HOME": str(tmp_path / "empty-torch"), "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for i, scores in enumerate(expected):
        for label, value in scores.items():
            assert got[label][i] == pytest.approx(value, abs=1e-5)


def test_encoder_format_matches_detoxify(tiny_encoder: Any) -> None:
    import torch

    path = tiny_encoder[0]
    ckpt = torch.load(path / "detoxify.ckpt", weights_only=True)  # tensors and plain data only
    args = ckpt["config"]["arch"]["args"]
    assert args["model_name"] == "BertForSequenceClassification"
    assert Path(args["model_type"]) == (path / "hf").resolve()
    assert ckpt["config"]["dataset"]["args"]["classes"] == ["toxicity", "insult"]
    assert not any(k.startswith("model.") for k in ckpt["state_dict"])
    tok = json.loads((path / "hf" / "tokenizer_config.json").read_text())
    config = json.loads((path / "hf" / "config.json").read_text())
    assert tok["model_max_length"] <= config["max_position_embeddings"]


def test_moved_encoder_still_loads(tiny_encoder: Any, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(tiny_encoder[0], moved)
    clf = load_trained(moved)
    assert clf.score(["idiot"]) == load_trained(tiny_encoder[0]).score(["idiot"])


def test_moved_classifier_still_loads(tiny_checkpoint: Any, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(tiny_checkpoint.path, moved)
    texts = ["idiot", "where is my parcel"]
    assert load_trained_classifier(moved).score(texts) == tiny_checkpoint.score(texts)


def test_not_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SafetyError, match="not a toxicity checkpoint"):
        load_trained(tmp_path)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "detoxify.ckpt").write_bytes(b"junk")
    with pytest.raises(SafetyError, match="cannot be loaded"):
        load_trained(tmp_path)


def test_detoxify_facts_this_code_relies_on() -> None:
    import detoxify.detoxify as dx
    import torch

    for name, (filename, _) in OFFICIAL.items():
        assert dx.MODEL_URLS[name].endswith("/" + filename)
    assert torch_hub_dir() == Path(torch.hub.get_dir())


def test_official_offline_fails_fast_and_cleanly(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    tried: list[Any] = []

    def no_network(*args: Any, **kwargs: Any) -> None:
        tried.append(args)
        raise OSError("this test has no network")

    # Fast means no network attempt at all (a timing bound here flaked on a busy machine).
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    cached, why = official_cached("original")
    assert not cached and "not cached" in why
    with pytest.raises(SafetyError, match="downloads are off"):
        load_official("original")
    with pytest.raises(SafetyError, match="offline mode"):
        load_official("original", download=True)
    with pytest.raises(SafetyError, match="unknown detoxify model"):
        load_official("nope")
    assert tried == []


def test_official_with_a_corrupt_cache_is_a_clean_error(offline: Path) -> None:
    filename, base = OFFICIAL["original"]
    ckpt = torch_hub_dir() / "checkpoints" / filename
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    assert "config/tokenizer are not" in official_cached("original")[1]
    snap = hf_hub_cache() / f"models--{base}" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert official_cached("original")[0]
    with pytest.raises(SafetyError, match="could not be loaded"):
        load_official("original")


def test_auto_falls_back_to_lexicon_with_reasons() -> None:
    choice = choose_backend()
    assert choice.name == "lexicon"
    assert [b for b, _ in choice.tried] == ["official", "trained"]
    assert "not cached" in choice.reason and "no self-trained checkpoint" in choice.reason
    json.dumps(choice.as_dict())


def test_official_by_name_falls_back_unless_strict(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPKIT_SAFETY_BACKEND", "official")
    choice = choose_backend()
    assert choice.name == "lexicon" and choice.requested == "official" and "offline mode" in choice.reason
    (tmp_path / "appkit.toml").write_text("[safety]\nstrict = true\n")
    with pytest.raises(SafetyError, match="offline mode"):
        choose_backend(load_settings(), reload=True)


def test_auto_picks_the_newest_trained_checkpoint(home_with_checkpoint: Path) -> None:
    choice = choose_backend()
    assert choice.name == "trained:tiny"
    assert "newest self-trained checkpoint" in choice.reason
    assert choose_backend() is choice  # loaded once per process
    assert get_classifier(backend="lexicon").name == "lexicon"


def test_backend_from_env_and_config(home_with_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPKIT_SAFETY_BACKEND", "lexicon")
    assert choose_backend().name == "lexicon"
    monkeypatch.setenv("APPKIT_SAFETY_BACKEND", "psychic")
    with pytest.raises(ConfigError, match="'psychic'.*auto, official, trained, lexicon"):
        choose_backend()
    monkeypatch.delenv("APPKIT_SAFETY_BACKEND")
    (tmp_path / "appkit.toml").write_text('[safety]\nbackend = "trained"\ncheckpoint = "tiny"\n')
    choice = choose_backend(load_settings())
    assert choice.name == "trained:tiny" and "configured" in choice.reason
