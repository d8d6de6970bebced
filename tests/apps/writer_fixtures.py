"""Fixtures of the writer's tests: a generated brand blog and a nano writer trained on it by the real CLI.

Imported by tests/apps/test_writer*.py and tests/tui/test_apps.py. The model is trained once
per session (pytest would build a session fixture once per importing module, so the trained
home is also cached here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.apps.writer_corpus import write_corpus

MODEL = "writer-toy"
_TRAINED: dict[str, Path] = {}


def train_args(home: Path, corpus: Path, *more: str) -> list[str]:
    """`appkit train-writer` on ``corpus`` with a nano model trained in seconds."""
    return ["--home", str(home), "--device", "cpu", "--database-url", f"sqlite:///{home / 'appkit.db'}",
            "train-writer", "--corpus", str(corpus), "--preset", "nano", "--max-steps", "60",
            "--learning-rate", "4e-3", "--batch-size", "4", *more]


@pytest.fixture(scope="session")
def writer_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 generated Markdown posts with front matter."""
    if "corpus" not in _TRAINED:
        _TRAINED["corpus"] = write_corpus(tmp_path_factory.mktemp("writer-corpus") / "posts")
    return _TRAINED["corpus"]


@pytest.fixture(scope="session")
def writer_home(tmp_path_factory: pytest.TempPathFactory, writer_corpus: Path) -> Path:
    """A home where `appkit train-writer` trained the nano writer ``writer-toy``."""
    if "home" not in _TRAINED:
        from appkit.cli import main

        home = tmp_path_factory.mktemp("writer-home")
        assert main(train_args(home, writer_corpus, "--name", MODEL)) == 0
        _TRAINED["home"] = home
    return _TRAINED["home"]


@pytest.fixture
def writer_settings(appkit_home: Path, writer_home: Path) -> Any:
    """Settings of a fresh home (empty database) whose active writer is the trained toy model."""
    from appkit.config import load_settings
    from appkit.store import open_store

    appkit_home.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    with open_store(settings) as store:
        store.register_model(MODEL, "writer", str(writer_home / "models" / MODEL), status="active", replace=True)
    return settings
