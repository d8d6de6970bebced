"""Fixtures shared by the whole suite: generated histories and one tiny trained model.

Nothing here reads ../shared/data or the network: the data is generated, the model is a
`nano` preset trained for a few seconds in the test session.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

INTENTS = {
    "order": (["where is my order", "has my order shipped yet", "track my package please", "when will my parcel arrive"],
              "Your order is on its way and should arrive within 3 business days."),
    "refund": (["I want a refund", "can I get my money back", "please refund my purchase", "how do I get a refund"],
               "I have started your refund; the money is back on your card within 5 days."),
    "password": (["I forgot my password", "reset my password", "I cannot log in to my account", "my login does not work"],
                 "Use the Forgot password link on the sign-in page and we will email you a reset link."),
    "human": (["let me talk to a person", "I want a human agent", "connect me to a real person", "agent please"],
              "Of course, I am connecting you with a member of our team now."),
}


def toy_rows(n: int = 160, seed: int = 0) -> list[dict[str, str]]:
    """``n`` customer/agent pairs over four intents, with small variations."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        intent = list(INTENTS)[i % len(INTENTS)]
        questions, answer = INTENTS[intent]
        q = rng.choice(questions) + rng.choice(["?", "", "!", " thanks", " asap"])
        rows.append({"customer": q, "agent": answer, "intent": intent})
    return rows


def write_pairs_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def toy_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pairs-shaped CSV history of 160 conversations."""
    return write_pairs_csv(tmp_path_factory.mktemp("history") / "tickets.csv", toy_rows())


@pytest.fixture
def appkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh APPKIT_HOME (models, runs, SQLite database) for one test."""
    home = tmp_path / "appkit-home"
    monkeypatch.setenv("APPKIT_HOME", str(home))
    monkeypatch.delenv("APPKIT_DATABASE_URL", raising=False)
    monkeypatch.setenv("APPKIT_DEVICE", "cpu")
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, toy_history: Path) -> Path:
    """A nano chat model trained on the toy history (a few seconds on CPU)."""
    from appkit.data import read_history
    from appkit.train.pipeline import ChatTrainingOptions, prepare_conversations, train_chat_model

    root = tmp_path_factory.mktemp("tiny-model")
    options = ChatTrainingOptions(preset="nano", max_steps=80, learning_rate=4e-3, batch_size=4, progress=False)
    train, val, _ = prepare_conversations(read_history(toy_history), options, log=lambda _: None)
    trained = train_chat_model(train, val, name="toy", models_dir=root / "models", runs_dir=root / "runs",
                               options=options, log=lambda _: None)
    return trained.path


@pytest.fixture(scope="session")
def support_model_dir(tmp_path_factory: pytest.TempPathFactory, toy_history: Path) -> Path:
    """A nano support model trained the way `appkit train-support` does (system prompt + retrieved cases)."""
    from appkit.config import load_settings
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.train import train_support

    home = tmp_path_factory.mktemp("support-home")
    settings = load_settings(home=home, device="cpu", database_url=f"sqlite:///{home / 'appkit.db'}")
    options = ChatTrainingOptions(preset="nano", max_steps=120, learning_rate=4e-3, batch_size=4, progress=False,
                                  device="cpu")
    trained = train_support(toy_history, name="toy-support", options=options, settings=settings, log=lambda _: None)
    return trained.path
