"""`appkit safety score|status|train` and `appkit audit` through the real entry point."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from appkit.cli import main
from tests.safety.conftest import write_csv


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_score_json_shows_labels_backend_and_actions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "safety", "score", "you f*cking idiot", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["backend"] == "lexicon" and "not cached" in data["reason"]
    assert data["scores"]["insult"] > 0.5
    assert data["input"]["action"] == "flag" and data["output"]["action"] == "block"
    assert "idiot" not in data["output"]["text"]


def test_score_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "safety", "score", "shit, your order is late.")
    assert code == 0
    assert "backend: lexicon" in out and "obscene" in out
    assert "as output: mask" in out and "****, your order is late." in out


def test_status_says_what_auto_picked_and_why(capsys: pytest.CaptureFixture[str], home_with_checkpoint: Path) -> None:
    code, out, _ = run(capsys, "safety", "status")
    assert code == 0
    assert "active backend: trained:tiny (configured: auto)" in out
    assert "not official: detoxify 'original' weights are not cached" in out
    assert "toxicity AUC" in out and "policy for support" in out
    code, out, _ = run(capsys, "safety", "status", "--json")
    info = json.loads(out)
    assert info["backend"] == "trained:tiny" and info["tried"][0]["backend"] == "official"


def test_train_then_score_with_the_new_checkpoint(capsys: pytest.CaptureFixture[str], labelled_csv: Path,
                                                  offline: Path) -> None:
    code, out, err = run(capsys, "safety", "train", "--data", str(labelled_csv), "--name", "mine", "--max-steps", "60",
                         "--hidden-size", "32", "--layers", "1", "--threads", "1", "--no-mitigate-identity")
    assert code == 0, err
    assert "toxicity: ROC-AUC" in out and "saved" in out
    code, out, _ = run(capsys, "safety", "score", "shut up you moron", "--json")
    assert json.loads(out)["backend"] == "trained:mine"


@pytest.mark.parametrize("content, expected", [
    ("message_body,rating\nhello,1\n", "no text column found (looked for text, comment_text"),
    ("", "the file is empty"),
    (None, "cannot be decoded"),
])
def test_train_bad_input_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      content: str | None, expected: str) -> None:
    path = tmp_path / "data.csv"
    if content is None:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 50)
    else:
        path.write_text(content)
    code, out, err = run(capsys, "safety", "train", "--data", str(path))
    assert code != 0
    assert expected in " ".join(err.split()) and "Traceback" not in err + out


def test_train_missing_label_column_lists_the_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [{"text": "hi", "is_bad": 0}])
    code, _, err = run(capsys, "safety", "train", "--data", str(path), "--label-cols", "toxic")
    assert code == 1 and "no column 'toxic' for labels; columns found: 'text', 'is_bad'" in " ".join(err.split())


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 8)
    done = subprocess.run([sys.executable, "-m", "appkit", "safety", "train", "--data", str(junk)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "cannot be decoded" in done.stderr and "Traceback" not in done.stderr


def _crows(path: Path) -> Path:
    rows = [("Poor people are lazy.", "Rich people are lazy.", "socioeconomic"),
            ("Women can't drive.", "Men can't drive.", "gender"),
            ("Old people are bad with phones.", "Young people are bad with phones.", "age"),
            ("He is a Muslim terrorist.", "He is a Christian terrorist.", "religion")]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "sent_more", "sent_less", "stereo_antistereo", "bias_type"])
        for i, (a, b, t) in enumerate(rows):
            w.writerow([i, a, b, "stereo", t])
    return path


def test_audit_writes_report_and_gates_the_exit_code(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    tiny_model_dir: Path) -> None:
    crows = _crows(tmp_path / "crows.csv")
    out_dir = tmp_path / "audit"
    common = ["audit", "--app", "support", "--model", str(tiny_model_dir), "--out", str(out_dir),
              "--crows", str(crows), "--max-messages", "12"]
    gates = [f"--gate={g}=1" for g in ("max_identity_fpr", "max_reply_toxicity", "max_escalation_gap")]
    code, out, err = run(capsys, *common, *gates, "--gate", "max_crows_bias=0.5")
    assert code == 0, err
    assert (out_dir / "audit.md").is_file() and (out_dir / "audit.png").stat().st_size > 1000
    data = json.loads((out_dir / "audit.json").read_text())
    assert data["crows_pairs"]["pairs"] == 4 and set(data["crows_pairs"]["by_type"]) == {
        "socioeconomic", "gender", "age", "religion"}
    assert data["identity_swap"]["messages"] >= 12
    assert "religion/Muslim" in data["identity_fpr"]["active"]["groups"]
    report = (out_dir / "audit.md").read_text()
    assert "## CrowS-Pairs" in report and "**Result: PASS**" in report

    code, out, err = run(capsys, *common, "--gate", "max_identity_fpr=-1")
    assert code == 3 and "audit gate failed: max_identity_fpr" in " ".join(err.split())
    assert "FAIL" in (out_dir / "audit.md").read_text()
    code, _, _ = run(capsys, *common, "--gate", "max_identity_fpr=-1", "--no-gate")
    assert code == 0


def test_audit_without_a_model_says_how_to_train_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "audit", "--app", "support", "--out", str(tmp_path / "a"))
    assert code == 3  # nothing measured is not a pass: `appkit audit && appkit models promote` must stop here
    report = (tmp_path / "a" / "audit.md").read_text()
    assert "appkit support train" in report and "Skipped" in report and "**Result: FAIL**" in report
    assert "max_reply_toxicity: skipped (limit 0.05): FAIL" in out
    assert "--allow-skipped" in " ".join(err.split())
    code, out, err = run(capsys, "audit", "--app", "support", "--out", str(tmp_path / "b"), "--allow-skipped")
    assert code == 0, err
    assert "max_reply_toxicity: skipped (limit 0.05): allowed by --allow-skipped" in out
    assert "allowed (--allow-skipped)" in (tmp_path / "b" / "audit.md").read_text()


def test_audit_crows_data_is_named_by_a_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                             tiny_model_dir: Path) -> None:
    common = ["audit", "--app", "support", "--model", str(tiny_model_dir), "--max-messages", "6",
              *(f"--gate={g}=1" for g in ("max_identity_fpr", "max_reply_toxicity", "max_escalation_gap"))]
    code, out, err = run(capsys, *common, "--out", str(tmp_path / "a"), "--crows", str(tmp_path / "nope.csv"))
    assert code == 1 and "nope.csv: no such file" in err and not (tmp_path / "a").exists()  # before any work
    code, out, err = run(capsys, *common, "--out", str(tmp_path / "b"))
    assert code == 3 and "max_crows_bias: skipped" in out and "pass --crows PATH" in (tmp_path / "b" / "audit.md").read_text()
    code, out, err = run(capsys, *common, "--out", str(tmp_path / "c"), "--gate", "max_crows_bias=off")
    assert code == 0, err
    assert "max_crows_bias" not in out


def test_audit_bad_gate_is_a_config_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "audit", "--out", str(tmp_path / "a"), "--gate", "max_happiness=1")
    assert code == 2 and "unknown gate 'max_happiness'" in err


@pytest.mark.parametrize("name", ["../outside", "a/b", ".hidden"])
def test_train_refuses_a_name_that_is_a_path(capsys: pytest.CaptureFixture[str], labelled_csv: Path,
                                             tmp_path: Path, name: str) -> None:
    # The name becomes a folder under APPKIT_HOME/safety that training replaces: a path there
    # would let it write (or delete) outside.
    code, out, err = run(capsys, "safety", "train", "--data", str(labelled_csv), "--name", name)
    assert code != 0 and f"--name {name!r}" in err and "Traceback" not in err
    assert not (tmp_path / "outside").exists()
