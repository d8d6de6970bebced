"""The sentiment app with real components: train a tiny classifier, analyze texts and files, bad input.

The model is trained once per module on generated sentences (a few seconds on CPU); every
command goes through the real `appkit` entry point.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest

from appkit.cli import main
from tests.apps.sentiment_data import sentences, write_csv

LABELS = ("negative", "neutral", "positive")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An APPKIT_HOME with a tiny 3-class classifier trained on 240 generated sentences (active)."""
    from appkit.config import load_settings
    from apps.sentiment.train import SentimentOptions, train_sentiment

    root = tmp_path_factory.mktemp("sentiment")
    home = root / "home"
    data = write_csv(root / "labeled.csv", sentences(240, seed=0))
    settings = load_settings(home=home, device="cpu", database_url=f"sqlite:///{home / 'appkit.db'}")
    options = SentimentOptions(hidden_size=64, layers=1, heads=2, max_length=32, epochs=12, learning_rate=3e-3,
                               patience=4, progress=False)
    train_sentiment(data, name="toy-sentiment", options=options, settings=settings, log=lambda _: None)
    return home


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point APPKIT_HOME at the trained home for this test."""
    monkeypatch.setenv("APPKIT_HOME", str(home))
    monkeypatch.delenv("APPKIT_DATABASE_URL", raising=False)
    monkeypatch.setenv("APPKIT_DEVICE", "cpu")
    return home


def test_a_classifier_with_damaged_weights_is_a_model_error(home, tmp_path):
    import shutil

    from appkit.errors import ModelError
    from apps.sentiment.analyzer import SentimentAnalyzer

    copy = shutil.copytree(home / "models" / "toy-sentiment", tmp_path / "damaged")
    (copy / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="damaged: the sentiment classifier cannot be loaded"):
        SentimentAnalyzer.load(copy)


@pytest.fixture
def analyzer(env: Path) -> Any:
    import appkit

    return appkit.load_app("sentiment")


def test_it_learns_the_labels_and_probabilities_sum_to_one(analyzer: Any) -> None:
    held_out = sentences(90, seed=123)  # new combinations of subjects, templates and words
    results = analyzer.analyze([t for t, _ in held_out])
    accuracy = sum(r.label == y for r, (_, y) in zip(results, held_out)) / len(held_out)
    assert accuracy >= 0.9  # chance is 1/3
    assert analyzer.labels == LABELS
    for r in results:
        assert set(r.probabilities) == set(LABELS)
        assert math.isclose(sum(r.probabilities.values()), 1.0, abs_tol=1e-5)
        assert r.probabilities[r.label] == max(r.probabilities.values())
        assert -1.0 <= r.score <= 1.0 and not r.truncated
    by_label = {y: r.score for r, (_, y) in zip(results, held_out) if r.label == y}
    assert by_label["negative"] < by_label["neutral"] < by_label["positive"]
    assert analyzer.analyze([]) == []
    assert analyzer.model_name == "toy-sentiment" and analyzer.describe()["parameters"] > 0


def test_saved_model_is_plain_transformers_plus_members_blended_as_documented(analyzer: Any) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from apps.sentiment.blend import member_types

    meta = json.loads((analyzer.path / "appkit.json").read_text())
    assert meta["labels"] == list(LABELS) and meta["temperature_folded"] is True
    t = meta["temperature"]
    assert 0.25 <= t <= 20 and meta["metrics"]["ece_after"] <= meta["metrics"]["ece_before"] + 1e-6
    assert len(meta["data"]["fingerprint"]) == 16
    model = AutoModelForSequenceClassification.from_pretrained(analyzer.path)
    tokenizer = AutoTokenizer.from_pretrained(analyzer.path)
    assert model.config.id2label == dict(enumerate(LABELS))
    text = "the staff was rude"
    with torch.no_grad():
        calibrated = model(**tokenizer(text, return_tensors="pt")).logits[0]
    # Served: the mean of the encoder's and each member's log-probabilities over the blend's temperature.
    members = meta["blend"]["members"]
    assert members and set(members) <= {"ngrams", "lstm"} and meta["metrics"]["blend"]["members"] == members
    parts = [calibrated.log_softmax(-1).double().numpy()]
    parts += [member_types()[name].load(analyzer.path).log_probabilities([text])[0] for name in members]
    mixed = sum(parts) / (len(parts) * meta["blend"]["temperature"])
    expected = np.exp(mixed) / np.exp(mixed).sum()
    ours = analyzer.analyze_one(text).probabilities
    assert [ours[label] for label in LABELS] == pytest.approx(expected.tolist(), abs=1e-5)
    # Undo the fold: the raw logits divided by T are the encoder's calibrated logits.
    layer = model.classifier
    with torch.no_grad():
        layer.weight.mul_(t)
        layer.bias.mul_(t) if layer.bias is not None else None
        raw = model(**tokenizer(text, return_tensors="pt")).logits[0]
    assert (raw / t).tolist() == pytest.approx(calibrated.tolist(), abs=1e-4)


def test_temperature_scaling_fixes_overconfidence_and_ece() -> None:
    import torch

    from apps.sentiment.calibration import expected_calibration_error, fit_temperature

    gen = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 3, generator=gen) * 1.5
    targets = torch.multinomial(true_logits.softmax(-1), 1, generator=gen).squeeze(1)
    overconfident = true_logits * 3  # a model three times too sure
    t = fit_temperature(overconfident, targets)
    assert t == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(overconfident.softmax(-1).tolist(), targets.tolist())
    after = expected_calibration_error((overconfident / t).softmax(-1).tolist(), targets.tolist())
    assert after < before / 3
    # All right on validation: no errors to measure sharpening by, so T stops at 0.5 (not ~0).
    assert fit_temperature(torch.tensor([[5.0, 0.0], [0.0, 5.0]]), torch.tensor([0, 1])) == pytest.approx(0.5, abs=0.01)


def test_analyze_file_in_chunks_writes_every_row_once(env: Path, tmp_path: Path, capsys: Any) -> None:
    rows = [(str(i), text, "x") for i, (text, _) in enumerate(sentences(530, seed=7))]
    rows[5] = ("5", "", "empty text")
    rows[9] = ("9", 'the refund was "great",\nreally great', "quoted, two lines")
    source = tmp_path / "reviews.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "review", "note"])
        w.writerows(rows)
    out = tmp_path / "results" / "out.csv"
    code, stdout, err = run(capsys, "sentiment", "analyze", str(source), "--text-col", "review", "-o", str(out),
                            "--chunk-size", "100")
    assert code == 0, err
    with out.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["id"] for r in written] == [str(i) for i in range(530)]
    assert written[9]["review"] == 'the refund was "great",\nreally great' and written[9]["note"] == "quoted, two lines"
    assert written[5]["label"] == "" and written[5]["prob_positive"] == ""
    labelled = [r for r in written if r["label"]]
    assert len(labelled) == 529 and {r["label"] for r in labelled} == set(LABELS)
    for r in labelled:
        assert sum(float(r[f"prob_{label}"]) for label in LABELS) == pytest.approx(1.0, abs=1e-3)
        assert -1 <= float(r["score"]) <= 1
    chart = out.with_suffix(".png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "negative" in stdout and "share" in stdout and "529 texts" in stdout
    assert str(chart) in stdout.replace("\n", "")
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.csv", "out.png"]  # no temporary files left
    code, stdout, _ = run(capsys, "sentiment", "analyze", str(source), "--text-col", "review", "-o", str(out),
                          "--json", "--no-chart")
    summary = json.loads(stdout)
    assert summary["rows"] == 530 and summary["empty"] == 1 and sum(summary["counts"].values()) == 529


def test_analyze_plain_text_and_tsv(env: Path, tmp_path: Path, capsys: Any) -> None:
    txt = tmp_path / "lines.txt"
    txt.write_text("the app was superb\n\nthe staff is rude\n", encoding="utf-8")
    code, _, err = run(capsys, "sentiment", "analyze", str(txt), "-o", str(tmp_path / "lines.tsv"), "--no-chart")
    assert code == 0, err
    rows = list(csv.reader((tmp_path / "lines.tsv").open(encoding="utf-8"), delimiter="\t"))
    assert rows[0][:2] == ["text", "label"] and rows[1][1] == "positive" and rows[3][1] == "negative"
    assert not (tmp_path / "lines.png").exists()


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        ("id,review\n1,great\n", ["--text-col", "comment"], "no column 'comment'; columns found: 'id', 'review'"),
        ("id,body2\n1,great\n", [], "no text column found"),
        ("", [], "the file is empty"),
        ("text\n", [], "has a header but no rows"),
    ],
)
def test_analyze_bad_input_is_a_clean_error_with_nothing_written(env: Path, tmp_path: Path, capsys: Any,
                                                                content: str, args: list[str], expected: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text(content, encoding="utf-8")
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "sentiment", "analyze", str(source), "-o", str(out_dir / "out.csv"), *args)
    assert code != 0
    assert expected in err and str(source) in err and "Traceback" not in err
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_analyze_a_missing_file_or_the_input_as_output(env: Path, tmp_path: Path, capsys: Any) -> None:
    code, _, err = run(capsys, "sentiment", "analyze", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.csv"))
    assert code != 0 and "no such file" in err
    source = write_csv(tmp_path / "in.csv", [("fine", "x")])
    code, _, err = run(capsys, "sentiment", "analyze", str(source), "-o", str(source))
    assert code != 0 and "is the input file" in err
    assert source.read_text(encoding="utf-8").startswith("text,label")


def test_long_texts_are_truncated_with_a_warning(analyzer: Any, env: Path, tmp_path: Path, capsys: Any) -> None:
    long_text = "the delivery was awful " + "and then it rained " * 40 + "so the delivery was awful"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyzer.analyze(["fine", long_text])[1]
    assert result.truncated and result.label == "negative"
    assert any("longer than the model's context of 32 tokens" in str(w.message) for w in caught)
    code, out, err = run(capsys, "sentiment", long_text)
    assert code == 0 and "negative" in out and "longer than the model's context" in err
    source = write_csv(tmp_path / "long.csv", [("fine", "x"), (long_text, "x")])
    code, _, err = run(capsys, "sentiment", "analyze", str(source), "-o", str(tmp_path / "o.csv"), "--no-chart")
    assert code == 0 and f"{source}: 1 texts are longer" in err and "(lines 3)" in err


@pytest.mark.e2e  # a fresh appkit process: kept out of the quick tier, as the other process tests
def test_a_long_text_is_reported_once_in_appkits_words(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    rows = sentences(40) + [("the delivery was awful " * 40, "negative")]
    data = write_csv(tmp_path / "labeled.csv", rows)
    env = {**os.environ, "APPKIT_HOME": str(tmp_path / "home"), "APPKIT_DEVICE": "cpu"}
    env.pop("APPKIT_DATABASE_URL", None)
    # A fresh process: an earlier model load in this one has already turned transformers' logging down.
    done = subprocess.run([sys.executable, "-m", "appkit", "sentiment", "train", "--data", str(data), "--max-steps", "2",
                           "--hidden-size", "32", "--layers", "1", "--heads", "2", "--max-length", "32"],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "1 training texts are longer than 32 tokens" in said and "indexing errors" not in said


def test_one_text_from_the_command_line(env: Path, capsys: Any) -> None:
    code, out, err = run(capsys, "sentiment", "I love it, the app was superb")
    assert code == 0, err
    assert out.split()[0] == "positive" and "neutral" in out
    code, out, _ = run(capsys, "sentiment", "text", "train", "--json")  # a text that is a command name
    assert code == 0 and set(json.loads(out)["probabilities"]) == set(LABELS)
    code, out, _ = run(capsys, "sentiment", "the staff is rude", "--json")
    data = json.loads(out)
    assert data["label"] == "negative" and data["score"] < 0 and data["model"] == "toy-sentiment"
    code, out, _ = run(capsys, "sentiment", "train", "--help")
    assert code == 0 and "--label-col" in out and "--base" in out
    code, out, _ = run(capsys, "sentiment", "analyze", "--help")
    assert code == 0 and "--chunk-size" in out


def test_eval_scores_a_labelled_file_against_the_majority_class(env: Path, tmp_path: Path, capsys: Any) -> None:
    test = write_csv(tmp_path / "test.csv", sentences(60, seed=77))
    code, out, err = run(capsys, "eval", "--app", "sentiment", "--data", str(test))
    assert code == 0, err
    model, floor = json.loads(out.strip().splitlines()[-1])["rows"]
    assert model["system"] == "toy-sentiment" and model["texts"] == 60 and model["accuracy"] >= 0.9
    assert 0 <= model["ece"] < 0.5 and sum(map(sum, model["confusion"])) == 60
    assert floor["system"].startswith("majority class (") and floor["accuracy"] == pytest.approx(1 / 3)
    assert "true label -> predicted" in out and "not a test" not in out


def test_eval_flags_training_data_and_refuses_unknown_labels(env: Path, tmp_path: Path, capsys: Any) -> None:
    seen = write_csv(tmp_path / "labeled.csv", sentences(240, seed=0))  # the very rows the model learned from
    code, out, err = run(capsys, "eval", "--app", "sentiment", "--data", str(seen), "--limit", "50")
    assert code == 0, err
    assert "is the data this model was trained on" in out and json.loads(out.strip().splitlines()[-1])["rows"][0]["texts"] == 50
    odd = write_csv(tmp_path / "odd.csv", [("so so", "meh"), ("the app was great", "positive")])
    code, _, err = run(capsys, "eval", "--app", "sentiment", "--data", str(odd))
    assert code != 0 and "'meh'" in err and "negative, neutral, positive" in err and "Traceback" not in err


def test_no_model_yet_says_how_to_train_one(appkit_home: Path, capsys: Any) -> None:
    code, _, err = run(capsys, "sentiment", "hello")
    assert code == 1 and "no sentiment model is trained yet" in err and "appkit sentiment train" in err


@pytest.mark.parametrize(
    ("rows", "args", "expected"),
    [
        ([("good", "1"), ("fine", "1"), ("great", "1")], [], "single value '1' in all 3 rows"),
        ([("good", "1")], ["--label-col", "stars"], "no column 'stars'; columns found: 'text', 'label'"),
        ([(f"text {i}", f"text {i}") for i in range(60)], ["--label-col", "label"], "60 different values"),
    ],
)
def test_train_refuses_unusable_labels(appkit_home: Path, tmp_path: Path, capsys: Any, rows: list[tuple[str, str]],
                                       args: list[str], expected: str) -> None:
    data = write_csv(tmp_path / "labeled.csv", rows)
    code, _, err = run(capsys, "sentiment", "train", "--data", str(data), *args)
    assert code != 0 and expected in err and str(data) in err and "Traceback" not in err
    assert not (appkit_home / "models").exists()


def test_train_empty_file_and_bad_budget(appkit_home: Path, tmp_path: Path, capsys: Any) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    code, _, err = run(capsys, "sentiment", "train", "--data", str(empty))
    assert code != 0 and str(empty) in err and "empty" in err
    data = write_csv(tmp_path / "ok.csv", sentences(30))
    code, _, err = run(capsys, "sentiment", "train", "--data", str(data), "--max-minutes", "0")
    assert code != 0 and "--max-minutes must be positive" in err
    from appkit.errors import ConfigError
    from apps.sentiment.train import SentimentOptions

    for bad, message in (({"max_length": 4}, "--max-length must be at least 8"),
                         ({"lstm_epochs": 0}, "lstm_epochs must be positive")):
        with pytest.raises(ConfigError, match=message):
            SentimentOptions(**bad).check()
    assert SentimentOptions(lstm=True).encoder_minutes(4) == 3 and SentimentOptions(lstm=False).encoder_minutes(4) == 4
    # The BiLSTM trains in what the encoder left of the budget, and never in less than its share.
    assert SentimentOptions.lstm_minutes(15, spent_minutes=4) == 11
    assert SentimentOptions.lstm_minutes(12, spent_minutes=10) == 3  # its quarter


def test_label_names_and_polarity() -> None:
    from apps.sentiment.labels import canonical, name_labels, order_labels, polarity

    assert name_labels(["1", "0"]) == {"0": "negative", "1": "positive"}
    assert name_labels(["-1", "0", "1"]) == {"-1": "negative", "0": "neutral", "1": "positive"}
    assert name_labels(["1", "2", "3", "4", "5"]) == {str(i): str(i) for i in range(1, 6)}
    assert canonical(" 4.0 ") == "4" and canonical("pos") == "pos"
    assert polarity(["1", "2", "3", "4", "5"]) == {"1": -1.0, "2": -0.5, "3": 0.0, "4": 0.5, "5": 1.0}
    assert polarity(["very negative", "negative", "neutral", "positive", "very positive"])["negative"] == -0.5
    assert polarity(["sports", "politics"]) == {}
    assert order_labels(["positive", "negative", "neutral"]) == ["negative", "neutral", "positive"]
    assert order_labels(["10", "9", "b", "a"]) == ["9", "10", "a", "b"]


def test_binary_numeric_labels_train_and_register(appkit_home: Path, tmp_path: Path, capsys: Any) -> None:
    rows = [(t, {"negative": "0", "positive": "1"}[y]) for t, y in sentences(120, seed=3, labels=("negative", "positive"))]
    data = write_csv(tmp_path / "sst.tsv", rows, header=("label", "sentence")[::-1], delimiter="\t")
    code, out, err = run(capsys, "sentiment", "train", "--data", str(data), "--max-steps", "30", "--hidden-size", "32",
                         "--layers", "1", "--heads", "2", "--name", "binary")
    assert code == 0, err
    assert "0 -> negative, 1 -> positive" in out and "ECE" in out and "active sentiment model" in out
    code, out, _ = run(capsys, "models", "list", "--app", "sentiment")
    assert "binary" in out and "active" in out
    assert "120 texts" in out and "acc " in out  # what it learned from, its validation accuracy
    held_out = [(t, {"negative": "0", "positive": "1"}[y]) for t, y in sentences(40, seed=9, labels=("negative", "positive"))]
    test = write_csv(tmp_path / "dev.tsv", held_out, header=("sentence", "label"), delimiter="\t")
    code, out, err = run(capsys, "eval", "--app", "sentiment", "--model", "binary", "--data", str(test))
    assert code == 0, err  # the file's 0/1 are read as the model's negative/positive
    assert json.loads(out.strip().splitlines()[-1])["rows"][1]["system"] in ("majority class (negative)",
                                                                              "majority class (positive)")
    assert (appkit_home / "runs" / "binary" / "metrics.jsonl").read_text().strip()


def test_eval_reads_a_test_files_numbers_as_the_training_files_were(appkit_home: Path, tmp_path: Path,
                                                                     capsys: Any) -> None:
    as_number = {"negative": "-1", "neutral": "0", "positive": "1"}
    rows = [(t, as_number[y]) for t, y in sentences(90, seed=4)]
    code, _, err = run(capsys, "sentiment", "train", "--data", str(write_csv(tmp_path / "train.csv", rows)),
                       "--max-steps", "20", "--hidden-size", "32", "--layers", "1", "--heads", "2", "--name", "three")
    assert code == 0, err
    # Alone, 0/1 would read as negative/positive; for this model 0 is neutral and 1 positive.
    only_two = [(t, as_number[y]) for t, y in sentences(20, seed=5, labels=("neutral", "positive"))]
    code, out, err = run(capsys, "eval", "--app", "sentiment", "--data", str(write_csv(tmp_path / "t.csv", only_two)))
    assert code == 0, err
    confusion = json.loads(out.strip().splitlines()[-1])["rows"][0]["confusion"]  # rows: negative, neutral, positive
    assert [sum(row) for row in confusion] == [0, 10, 10]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_tui_pane_runs_the_real_analyzer(env: Path) -> None:
    from appkit.config import load_settings
    from appkit.tui.app import ChatApp
    from tests.tui.conftest import wait_for

    app = ChatApp(load_settings(), app="sentiment")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#sentiment-pane")
        await wait_for(pilot, lambda: pane.opened is not None, what="the classifier")
        assert pane.opened.ok
        await pilot.pause()
        assert "toy-sentiment" in app.query_one("#status").render().plain
        app.query_one("#sentiment-input").text = "the app was superb\nthe staff is rude"
        await pilot.press("f5")
        table = app.query_one("#sentiment-table")
        await wait_for(pilot, lambda: table.row_count == 2, what="the labels")
        assert [table.get_row_at(i)[1] for i in range(2)] == ["positive", "negative"]
        assert "positive 50% (1)" in str(app.query_one("#distribution").render())


def test_the_chart_colours_negative_red_and_positive_green_whatever_the_label_names():
    from matplotlib.colors import to_hex

    from apps.sentiment.batch import _colours

    assert [to_hex(c) for c in _colours(["bad", "good"])] == ["#d62728", "#2ca02c"]
    stars = [to_hex(c) for c in _colours(["1", "2", "3", "4", "5"])]
    assert stars[0] == "#d62728" and stars[2] == "#7f7f7f" and stars[4] == "#2ca02c"
    assert _colours(["sports", "politics"]) == ["C0", "C1"], "labels with no order keep distinct colours"


@pytest.mark.parametrize("user_value", [None, "ACTIVE"])
def test_torch_threads_sleep_when_other_work_holds_the_cpu_unless_the_user_chose(user_value: str | None) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_value:
        env["OMP_WAIT_POLICY"] = user_value
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # other work holding a core
    try:
        probe = ("from apps.sentiment.model import set_cpu_wait_policy; import os; set_cpu_wait_policy(); "
                 "print(os.environ.get('OMP_WAIT_POLICY'))")
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                             timeout=60).stdout.strip()
    finally:
        burner.kill()
        burner.wait()
    assert out == (user_value or "PASSIVE")
