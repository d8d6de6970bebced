"""Safety fixtures: generated labelled data, a tiny toxicity checkpoint, an offline environment.

Nothing here reads ../shared/data or the network. The toxic examples are generated from a
handful of words, so the classifier learns them in a second and an encoder with one small
layer in a few seconds.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest

NEUTRAL = ["where is my order", "I want a refund please", "thanks for the quick help", "my parcel arrived today",
           "can you reset my password", "the app crashes when I pay", "please change my address",
           "how long does shipping take", "I love this product", "the delivery was late again"]
TOXIC = ["you are an idiot", "shut up you moron", "this is shit", "fuck off", "you stupid bastard",
         "I hate you idiots", "what a fucking joke", "go to hell moron"]


def labelled_rows(n: int = 240, seed: int = 0) -> list[dict[str, Any]]:
    """Support-like texts, a third of them abusive, with toxicity/insult labels."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        toxic = i % 3 == 0
        text = rng.choice(TOXIC if toxic else NEUTRAL) + rng.choice(["", "!", " now", " today", "?"])
        rows.append({"comment_text": text, "toxic": int(toxic), "insult": int(toxic and "idiot" in text or "moron" in text)})
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network, empty torch/HF caches, a fresh APPKIT_HOME; forget classifiers loaded before."""
    from appkit.safety.backends import clear_cache

    cache = tmp_path / "caches"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    monkeypatch.setenv("HF_HOME", str(cache / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("APPKIT_SAFETY_BACKEND", raising=False)
    monkeypatch.delenv("APPKIT_SAFETY_CHECKPOINT", raising=False)
    monkeypatch.setenv("APPKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("APPKIT_DATABASE_URL", raising=False)
    monkeypatch.setenv("APPKIT_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)  # no stray appkit.toml
    clear_cache()
    yield cache
    clear_cache()


@pytest.fixture(scope="session")
def labelled_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("labelled") / "toxicity.csv", labelled_rows())


TINY = dict(progress=False, mitigate_identity=False, support_examples=0)
# The encoder member, as small as it gets: one layer, trained for a few seconds.
TINY_ENCODER = dict(TINY, encoder=True, hidden_size=32, num_layers=1, num_heads=2, max_length=32, vocab_size=300,
                    epochs=30.0, batch_size=16, learning_rate=3e-3, max_steps=120, threads=1)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, labelled_csv: Path) -> Any:
    """appkit's classifier (n-grams and lexicon) trained on the generated data; returns the TrainedClassifier."""
    from appkit.safety.data import read_labelled
    from appkit.safety.train import ClassifierOptions, train_classifier

    root = tmp_path_factory.mktemp("checkpoints")
    data = read_labelled(labelled_csv)
    return train_classifier(data, name="tiny", out_root=root, options=ClassifierOptions(**TINY), log=lambda _: None)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory, labelled_csv: Path) -> Any:
    """The encoder member alone, trained a few seconds and saved in detoxify's format; returns (path, TrainedEncoder)."""
    from appkit.model.io import staged_directory
    from appkit.safety.data import read_labelled
    from appkit.safety.encoder import save_encoder, train_encoder
    from appkit.safety.train import ClassifierOptions

    data = read_labelled(labelled_csv)
    path = tmp_path_factory.mktemp("encoders") / "tiny"
    encoder = train_encoder(data.texts, data.targets, data, ClassifierOptions(**TINY_ENCODER), [1.0, 1.0],
                            log=lambda _: None)
    with staged_directory(path) as staging:
        save_encoder(encoder, data.labels, staging, path)
    return path, encoder


@pytest.fixture
def home_with_checkpoint(tiny_checkpoint: Any, tmp_path: Path) -> Path:
    """APPKIT_HOME (set by ``offline``) holding a copy of the tiny checkpoint under safety/."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(tiny_checkpoint.path, home / "safety" / "tiny")
    return home
