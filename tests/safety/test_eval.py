"""`appkit safety eval` and `calibrate` through the real command, and the pieces they stand on."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError
from appkit.safety.evaluate import BinaryData, group_mentions, measure
from appkit.safety.thresholds import threshold_for_fpr
from tests.safety.conftest import write_csv
from tests.safety.test_cli import run


def eval_rows(n: int = 120, seed: int = 0) -> list[dict[str, Any]]:
    """Labelled texts in another shape than the training fixture: clean ones name identity groups too."""
    rng = random.Random(seed)
    clean = ["As a gay man I want my refund", "I am Muslim and my parcel is late", "my order has not arrived",
             "thanks, the blender works now", "can I change the delivery address", "the gay pride shirt is sold out"]
    toxic = ["you useless idiot, refund me", "this shop is shit", "shut up you moron", "fuck your delivery"]
    rows = []
    for i in range(n):
        is_toxic = i % 4 == 0
        rows.append({"message": rng.choice(toxic if is_toxic else clean), "is_abusive": int(is_toxic)})
    return rows


def test_eval_prints_a_table_then_one_json_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                home_with_checkpoint: Path) -> None:
    data = write_csv(tmp_path / "mine.csv", eval_rows())
    code, out, err = run(capsys, "safety", "eval", "--data", str(data), "--text-col", "message",
                         "--label-col", "is_abusive")
    assert code == 0, err
    *table, last = out.strip().splitlines()
    result = json.loads(last)
    assert result["eval"] == "safety" and result["texts"] == 120 and result["toxic"] == 30
    by = {r["backend"]: r for r in result["results"]}
    assert set(by) == {"trained:tiny", "lexicon"}
    mine = by["trained:tiny"]
    assert mine["roc_auc"] > 0.9 and mine["threshold"] == 0.5 and 0 <= mine["fpr"] <= 1
    assert mine["groups"]["sexual_orientation/gay"]["clean"] == sum(
        "gay" in r["message"] for r in eval_rows() if not r["is_abusive"])
    text = "\n".join(table)
    assert "ROC-A" in text and "trained:" in text and "lexicon" in text and "sexual_orientation/gay" in text


def test_eval_bad_input_is_a_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_csv(tmp_path / "mine.csv", eval_rows())
    code, _, err = run(capsys, "safety", "eval", "--data", str(data), "--text-col", "message", "--label-col", "nope")
    assert code == 1 and "no column 'nope' for labels; columns found: 'message', 'is_abusive'" in " ".join(err.split())
    clean_only = write_csv(tmp_path / "clean.csv", [{"text": "hello", "toxic": 0}, {"text": "hi", "toxic": 0}])
    code, _, err = run(capsys, "safety", "eval", "--data", str(clean_only))
    assert code == 1 and "every text is clean" in err and "Traceback" not in err


def test_measure_counts_false_positives_per_group() -> None:
    class Flags:
        name, labels = "flags-gay", ("toxicity",)

        def score(self, texts: list[str]) -> list[dict[str, float]]:
            return [{"toxicity": 0.9 if "gay" in t or "idiot" in t else 0.1} for t in texts]

    texts = ["I am gay"] * 5 + ["I am Muslim"] * 5 + ["you idiot"] * 5
    data = BinaryData(texts, [False] * 10 + [True] * 5, "toxicity", "x.csv")
    r = measure(Flags(), data, 0.5)
    assert r["fpr"] == 0.5 and r["recall"] == 1.0 and r["precision"] == 0.5 and r["roc_auc"] == 0.75
    assert r["groups"]["sexual_orientation/gay"]["fpr"] == 1.0 and r["groups"]["religion/Muslim"]["fpr"] == 0.0
    assert r["worst_group"] == "sexual_orientation/gay"
    assert "religion/Muslim" in group_mentions(["MUSLIMS are welcome"]) and not group_mentions(["Blackpool"])


def test_threshold_for_a_false_positive_rate() -> None:
    clean = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    toxic = [0.5, 0.95, 0.985, 0.995]
    found = threshold_for_fpr(clean + toxic, [False] * 100 + [True] * 4, 0.02)
    # Two of 100 clean texts may be flagged: 0.98 and 0.99 are; 0.985 and 0.995 of the toxic ones are caught.
    assert found == {"threshold": 0.98, "fpr": 0.02, "recall": 0.5, "clean": 100, "toxic": 4}
    none = threshold_for_fpr(clean + toxic, [False] * 100 + [True] * 4, 0.0)
    assert none["threshold"] == 0.995 and none["fpr"] == 0.0 and none["recall"] == 0.25
    with pytest.raises(ConfigError, match="--max-fpr 1.5"):
        threshold_for_fpr(clean, [False] * 100, 1.5)


def test_calibrate_stores_thresholds_the_policy_and_status_use(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               home_with_checkpoint: Path) -> None:
    from appkit.safety.backends import clear_cache
    from appkit.safety.policy import load_policy

    data = write_csv(tmp_path / "mine.csv", eval_rows(200, seed=1))
    code, out, err = run(capsys, "safety", "calibrate", "--data", str(data), "--text-col", "message",
                         "--label-col", "is_abusive", "--max-fpr", "0.05")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    found = result["labels"]["toxicity"]
    assert result["backend"] == "trained:tiny" and found["fpr"] <= 0.05
    stored = json.loads((home_with_checkpoint / "safety" / "thresholds.json").read_text())
    assert stored["labels"]["toxicity"]["threshold"] == found["threshold"]
    policy = load_policy("support")
    assert {r.label: r.threshold for r in policy.rules["input"]}["toxicity"] == found["threshold"]
    assert {r.label: r.threshold for r in policy.rules["output"]}["toxicity"] == found["threshold"]
    code, out, _ = run(capsys, "safety", "status")
    assert f"toxicity >= {found['threshold']:.3f}" in out and "applied" in out
    # Another backend does not inherit them; appkit.toml still wins.
    assert {r.label: r.threshold for r in load_policy("support", backend="lexicon").rules["input"]}["toxicity"] == 0.5
    (tmp_path / "appkit.toml").write_text("[safety.policy.input]\ntoxicity = 0.77\n")
    clear_cache()
    assert {r.label: r.threshold for r in load_policy("support", load_settings()).rules["input"]}["toxicity"] == 0.77


def test_calibrate_refuses_data_it_cannot_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_csv(tmp_path / "mine.csv", eval_rows())
    code, _, err = run(capsys, "safety", "calibrate", "--data", str(data), "--text-col", "message",
                       "--label-col", "is_abusive", "--max-fpr", "2")
    assert code == 2 and "--max-fpr 2.0" in err
    spam = write_csv(tmp_path / "spam.csv", [{"text": "buy now", "spam": 1, "ads": 1}, {"text": "hi", "spam": 0, "ads": 0}])
    code, _, err = run(capsys, "safety", "calibrate", "--data", str(spam), "--label-col", "spam")
    assert code == 0, err  # one label column of any name means toxic or not
    code, _, err = run(capsys, "safety", "calibrate", "--data", str(spam))
    assert code == 1 and "no label columns found" in " ".join(err.split())
    (tmp_path / "home" / "safety" / "thresholds.json").write_text('{"labels": 3}')
    code, _, err = run(capsys, "safety", "status")
    assert code == 2 and "not a calibration written by `appkit safety calibrate`" in err


def test_audit_report_carries_the_eval_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_csv(tmp_path / "mine.csv", eval_rows())
    code, out, err = run(capsys, "audit", "--out", str(tmp_path / "a"), "--allow-skipped", "--data", str(data),
                         "--text-col", "message", "--label-col", "is_abusive")
    assert code == 0, err
    report = (tmp_path / "a" / "audit.md").read_text()
    assert "## Toxicity classifiers on your labelled data" in report and "| lexicon |" in report
    assert json.loads((tmp_path / "a" / "audit.json").read_text())["classifier_eval"]["toxic"] == 30
