"""`appkit sentiment train --base`: a classification head on a tiny Llama that appkit trained."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from appkit.cli import main
from tests.apps.sentiment_data import sentences, write_csv


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_base_by_directory_and_by_registered_name(appkit_home: Path, tiny_model_dir: Path, tmp_path: Path,
                                                  capsys: Any) -> None:
    import appkit
    from appkit.config import load_settings
    from appkit.store import open_store

    data = write_csv(tmp_path / "labeled.csv", sentences(90, seed=1, labels=("negative", "positive")))
    code, out, err = run(capsys, "sentiment", "train", "--data", str(data), "--base", str(tiny_model_dir),
                         "--max-steps", "12", "--name", "on-llama")
    assert code == 0, err
    assert "llama-base" in out and "active sentiment model" in out
    saved = appkit_home / "models" / "on-llama"
    config = json.loads((saved / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["pad_token_id"] is not None
    meta = json.loads((saved / "appkit.json").read_text())
    assert meta["base"] == str(tiny_model_dir) and meta["wrapping"]["prefix"] == []
    assert len(meta["wrapping"]["suffix"]) == 1  # the base's end-of-text token closes every text
    assert meta["metrics"]["learning_rate"] == 1e-3, "a small base is fine-tuned at the small-model rate"

    with pytest.warns(UserWarning, match="longer than the model's context"):
        results = appkit.load_app("sentiment").analyze(["the app was superb", "the staff is rude", "ok " * 600])
    assert all(math.isclose(sum(r.probabilities.values()), 1.0, abs_tol=1e-5) for r in results)
    assert results[2].truncated and not results[0].truncated

    with open_store(load_settings()) as store:  # the base as a name from the registry
        store.register_model("toy-base", "support", str(tiny_model_dir), status="candidate")
    code, out, err = run(capsys, "sentiment", "train", "--data", str(data), "--base", "toy-base", "--max-steps", "4",
                         "--name", "on-name")
    assert code == 0, err
    assert json.loads((appkit_home / "models" / "on-name" / "appkit.json").read_text())["base"] == str(tiny_model_dir)


def test_a_base_that_is_not_there(appkit_home: Path, tmp_path: Path, capsys: Any) -> None:
    data = write_csv(tmp_path / "labeled.csv", sentences(30))
    code, _, err = run(capsys, "sentiment", "train", "--data", str(data), "--base", "no-such-model")
    assert code != 0 and "--base no-such-model" in err and "appkit models list" in err and "Traceback" not in err


def test_the_default_rate_on_a_base_depends_on_its_size() -> None:
    from apps.sentiment.train import base_learning_rate

    assert base_learning_rate(1_150_000) == 1e-3  # appkit's nano preset
    assert base_learning_rate(125_000_000) == 1e-4  # a GPT-2-sized base keeps the usual rate
