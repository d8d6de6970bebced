"""bench/report.py's generated support store: the report counts exactly what was generated, and rows written in
bulk report the same as the same history written through the Store API.

The benchmark times `appkit report` on 100,000 generated messages; these checks keep its store honest at a
size that runs in seconds. Skipped when Bitext's support CSV is not beside the repo (../shared/data).
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from appkit.config import load_settings
from appkit.insights.period import parse_period
from appkit.insights.report import build_report

BENCH = Path(__file__).resolve().parents[2] / "bench" / "report.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_report", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module
    spec.loader.exec_module(module)
    store = sys.modules["report_store"]  # the generator bench/report.py imports
    data = store.DEFAULT_DATA / store.DATA_FILE
    if not data.is_file():
        pytest.skip(f"Bitext's support data is not at {data}")
    module.ROWS = module.read_bitext(data)
    return module


def period_of(history):
    return parse_period("30d", now=history.now + timedelta(seconds=1))


def test_the_report_counts_what_was_generated(bench, store, tmp_path):
    from sqlalchemy import func, select

    from appkit.store.models import Message

    history = bench.Generator(bench.ROWS, seed=3).history(2000)
    bench.write_bulk(store, history)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Message)).scalar() == 2000
    report = build_report("support", period_of(history), settings=load_settings(home=tmp_path / "home"),
                          store=store, reference=None)
    want = bench.expected(history)
    assert bench.observed(report) == want
    # The history holds what the report has to tell apart: older conversations, every outcome, two models,
    # each handoff reason, changed ratings and safety decisions.
    assert want["conversations"] < len(history.conversations)
    assert min(want["resolved"], want["handed_over"], want["open"]) > 0
    assert {"support-v3", "support-v4"} <= set(want["models"])
    assert {"low_confidence", "sentiment_drop", "asked_for_human"} <= set(want["handoff_reasons"])
    assert len(history.feedback) > want["rated"] > 0 and want["safety"]


def test_bulk_rows_report_as_the_store_api_writes(bench, tmp_path):
    from appkit.store import open_store

    history = bench.Generator(bench.ROWS, seed=5).history(300)
    reference = bench.bitext_reference(bench.ROWS)
    settings = load_settings(home=tmp_path / "home")
    reports = []
    for how, write in (("bulk", bench.write_bulk), ("api", bench.write_with_store_api)):
        with open_store(url=f"sqlite:///{tmp_path / how}.db", upgrade=True) as store:
            write(store, history)
            reports.append(build_report("support", period_of(history), settings=settings, store=store,
                                        reference=reference))
    assert bench.comparable(reports[0]) == bench.comparable(reports[1])
    assert bench.observed(reports[0]) == bench.expected(history)
