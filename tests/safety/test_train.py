"""Reading labelled data (and its errors), metrics, and what training writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appkit.errors import DataError, TrainingError
from appkit.safety.metrics import binary_f1, davidson_class, roc_auc, weighted_f1
from appkit.safety.data import read_labelled, split_indices
from appkit.safety.train import ClassifierOptions, train_classifier

from tests.safety.conftest import TINY, TINY_ENCODER, labelled_rows, write_csv


def test_reads_jigsaw_style_columns(labelled_csv: Path) -> None:
    data = read_labelled(labelled_csv)
    assert data.labels == ("toxicity", "insult")  # renamed as detoxify renames them
    assert data.scheme == "multilabel" and len(data.texts) == 240
    assert all(len(t) == 2 for t in data.targets)


def test_reads_davidson_classes(tmp_path: Path) -> None:
    rows = [{"": i, "count": 3, "hate_speech": 0, "offensive_language": 0, "neither": 3, "class": c, "tweet": t}
            for i, (c, t) in enumerate([(0, "group hate"), (1, "rude words"), (2, "nice day"), (2, "")])]
    data = read_labelled(write_csv(tmp_path / "labeled_data.csv", rows))
    assert data.labels == ("toxicity", "identity_attack") and data.scheme == "davidson"
    assert data.targets == [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]] and data.classes == [0, 1, 2]
    assert data.skipped == 1
    bad = write_csv(tmp_path / "bad.csv", [{"class": 7, "tweet": "x", "hate_speech": 0}])
    with pytest.raises(DataError, match=r"bad.csv, line 2: column 'class' is '7'; expected 0"):
        read_labelled(bad)


def test_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"body_text": "hi", "rating": 1}])
    with pytest.raises(DataError, match=r"no text column found .* columns found: 'body_text', 'rating'"):
        read_labelled(path)
    with pytest.raises(DataError, match=r"no column 'nope'; columns found: 'body_text', 'rating'"):
        read_labelled(path, text_col="nope")
    with pytest.raises(DataError, match=r"no column 'toxic' for labels; columns found"):
        read_labelled(path, text_col="body_text", label_cols=["toxic"])
    with pytest.raises(DataError, match=r"no label columns found"):
        read_labelled(path, text_col="body_text")


def test_bad_label_value_names_file_and_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": "a", "toxic": "1"}, {"text": "b", "toxic": "very"}])
    with pytest.raises(DataError, match=r"t.csv, line 3: column 'toxic' is 'very'; expected a number from 0 to 1"):
        read_labelled(path)
    ok = write_csv(tmp_path / "ok.csv", [{"text": "a", "toxic": "true"}, {"text": "b", "toxic": "0.25"}])
    assert read_labelled(ok).targets == [[1.0], [0.25]]


def test_binary_junk_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(DataError, match="junk.csv.*cannot be decoded"):
        read_labelled(junk)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        read_labelled(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,toxic\n")
    with pytest.raises(DataError, match="no records"):
        read_labelled(header_only)
    with pytest.raises(DataError, match="no such file"):
        read_labelled(tmp_path / "missing.csv")


def test_a_label_with_no_positives_cannot_be_trained(tmp_path: Path) -> None:
    rows = [{"text": f"hello {i}", "toxic": 0} for i in range(20)]
    data = read_labelled(write_csv(tmp_path / "t.csv", rows))
    with pytest.raises(TrainingError, match="no training row is positive for label 'toxicity'"):
        train_classifier(data, name="x", out_root=tmp_path, options=ClassifierOptions(**TINY), log=lambda _: None)


def test_split_is_deterministic() -> None:
    a = split_indices(100, [0.1, 0.1], seed=3)
    assert a == split_indices(100, [0.1, 0.1], seed=3)
    assert [len(p) for p in a] == [80, 10, 10] and sorted(sum(a, [])) == list(range(100))


def test_metrics() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert binary_f1([1, 0, 1, 0], [1, 1, 0, 0])["f1"] == pytest.approx(0.5)
    assert weighted_f1([0, 1, 2, 2], [0, 1, 2, 2]) == 1.0
    assert davidson_class({"toxicity": 0.9, "identity_attack": 0.7}) == 0
    assert davidson_class({"toxicity": 0.9, "identity_attack": 0.1}) == 1
    assert davidson_class({"toxicity": 0.1, "identity_attack": 0.1}) == 2


def test_training_writes_the_classifier_with_metadata(tiny_checkpoint: Any) -> None:
    path = tiny_checkpoint.path
    assert sorted(p.name for p in path.iterdir()) == ["ngrams.safetensors", "safety.json"]  # no pickle
    meta = json.loads((path / "safety.json").read_text())
    assert meta["appkit_format"] == 2 and meta["labels"] == ["toxicity", "insult"]
    assert meta["blend"]["members"] == ["ngrams"] and set(meta["blend"]["combination"]) == {"toxicity", "insult"}
    assert meta["metrics"]["labels"]["toxicity"]["roc_auc"] > 0.9
    assert meta["options"]["encoder"] is False


def test_identity_mitigation_adds_neutral_examples(tmp_path: Path, labelled_csv: Path) -> None:
    data = read_labelled(labelled_csv)
    lines: list[str] = []
    options = ClassifierOptions(**{**TINY, "mitigate_identity": True, "max_steps": 5})
    trained = train_classifier(data, name="m", out_root=tmp_path, options=options, log=lines.append)
    assert trained.metrics["identity_examples"] > 100
    assert any("neutral identity statements" in line for line in lines)
    assert trained.metrics["train_texts"] == 240 - trained.metrics["val_texts"] + trained.metrics["identity_examples"]


def test_time_budget_stops_the_encoder(tmp_path: Path) -> None:
    data = read_labelled(write_csv(tmp_path / "t.csv", labelled_rows(64)))
    options = ClassifierOptions(**{**TINY_ENCODER, "max_steps": None, "epochs": 10_000, "max_minutes": 0.02})
    # Validated on its own training texts, whose loss keeps falling: early stopping cannot end it first.
    trained = train_classifier(data, name="b", out_root=tmp_path, options=options, val=data, log=lambda _: None)
    # 10,000 epochs would be at least 10,000 steps: the budget, not the epochs, ended the run.
    encoder = trained.metrics["encoder"]
    assert encoder["stopped"] == "max_minutes" and encoder["steps"] < 10_000


def test_in_domain_neutral_examples(tmp_path: Path, labelled_csv: Path) -> None:
    from appkit.safety.neutral import support_sentences, texts_from_history

    generated = support_sentences(200, seed=1)
    assert len(set(generated)) == 200 and generated == support_sentences(200, seed=1)
    history = write_csv(tmp_path / "tickets.csv", [
        {"customer": "where is my order", "agent": "It ships today."},
        {"customer": "you fucking idiots", "agent": "Sorry to hear that."},
    ])
    texts = texts_from_history(history)
    assert "where is my order" in texts and not any("idiots" in t for t in texts)
    data = read_labelled(labelled_csv)
    lines: list[str] = []
    options = ClassifierOptions(**{**TINY, "support_examples": 50, "max_steps": 5})
    trained = train_classifier(data, name="n", out_root=tmp_path, options=options, neutral=texts, log=lines.append)
    assert trained.metrics["support_examples"] == 50 + len(texts)
    assert any("50 generated support sentences + 3 given texts" in line for line in lines)
