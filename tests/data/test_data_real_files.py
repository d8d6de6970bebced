"""The public datasets in ../shared/data (beside the repository) load as they are.

They run in the default test run and in CI, which has ../shared beside its checkout; they only
read files (seconds). Where the data is not there (a user's clone), each says so and skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit.data import curate, read_history_with_report

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "support"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not there: these tests read the public data in ../shared/data beside the repository")
    return path


def test_bitext():
    files = sorted(need(DATA / "bitext_llm_4.5k").glob("*.csv"))
    convs, report = read_history_with_report(files[0])
    assert report.shape == "pairs" and 4000 <= len(convs) <= 5000
    assert all("intent" in c.meta for c in convs)
    out, creport = curate(convs)
    assert creport.pii.get("order_id", 0) > 1000
    assert any("{{Order Number}}" in t.text for c in out for t in c.turns)


def test_taskmaster():
    convs, report = read_history_with_report(need(DATA / "taskmaster4_coffee" / "data_00.json"))
    assert report.shape == "dialogue" and len(convs) == 500


@pytest.mark.parametrize("name", ["dialogues_032.json", "dialogues_065.json"])
def test_sgd(name):
    convs, _ = read_history_with_report(need(DATA / "sgd_banking_payment" / "train" / name))
    assert len(convs) == 128 and convs[0].turns[1].role == "assistant"


def test_twcs():
    convs, report = read_history_with_report(need(DATA / "twcs_sample" / "sample.csv"))
    assert report.shape == "twcs" and 15 <= len(convs) <= 60
