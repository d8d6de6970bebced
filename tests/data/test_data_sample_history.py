"""The shipped sample history: loads with no flags, has variety, and is reproducible."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

from appkit.data import curate, read_history_with_report

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "apps" / "support" / "data" / "sample_history.csv"
SCRIPT = ROOT / "scripts" / "make_sample_history.py"


def test_sample_loads_with_no_flags():
    convs, report = read_history_with_report(SAMPLE)
    assert report.shape == "long" and report.dropped == {}
    assert 450 <= len(convs) <= 550
    exchanges = Counter(sum(t.role == "user" for t in c.turns) for c in convs)
    single = exchanges[1] / len(convs)
    assert 0.5 <= single <= 0.7 and sum(n for k, n in exchanges.items() if k >= 2) > 100
    assert all(c.turns[-1].role == "assistant" for c in convs)
    assert SAMPLE.stat().st_size < 300_000


def test_every_conversation_names_its_intent():
    # The demo groups past replies by these (apps/support/cases.py); without them it falls back
    # to clusters of the replies, which route new wordings worse.
    convs, _ = read_history_with_report(SAMPLE)
    intents = Counter(c.meta.get("intent") for c in convs)
    assert None not in intents and len(intents) == 16 and min(intents.values()) >= 15


def test_sample_covers_the_intents():
    convs, _ = read_history_with_report(SAMPLE)
    text = " ".join(t.text.lower() for c in convs for t in c.turns)
    for phrase in ("track", "cancel", "refund", "return", "password", "invoice", "express", "delete", "charged twice",
                   "paypal", "human", "change", "thank"):
        assert phrase in text, phrase


def test_sample_curates_to_placeholders():
    convs, _ = read_history_with_report(SAMPLE)
    out, report = curate(convs)
    assert report.pii.get("order_id", 0) > 100 and len(out) > 0.9 * len(convs)


def test_generator_reproduces_the_committed_file(tmp_path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_sample_history", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "s.csv"
    monkeypatch.setattr("sys.argv", ["make_sample_history.py", "-o", str(out)])
    module.main()
    assert out.read_bytes() == SAMPLE.read_bytes()
