"""The report's charts draw whatever a period holds, without matplotlib warnings."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

from appkit.insights import charts
from appkit.insights.period import Period
from appkit.insights.report import Report
from appkit.insights.usage import Mood, ModelUsage, Usage


def _report(models: list[ModelUsage]) -> Report:
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    usage = Usage(conversations=3, customer_messages=5, bot_replies=5, agent_replies=0, days=[], handoff_reasons={},
                  safety=[], total=ModelUsage("all models"), models=models)
    return Report("support", Period(start, datetime(2026, 12, 2, tzinfo=timezone.utc)), start, usage)


def test_latency_without_any_recorded_sentiment_draws_cleanly() -> None:
    models = [ModelUsage("v1", latency_p50_ms=120.0, latency_p95_ms=300.0),
              ModelUsage("v2", latency_p50_ms=90.0, latency_p95_ms=200.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No artists with labels found to put in legend" before
        png = charts.latency_and_mood(_report(models))
    assert png is not None and png.startswith(b"\x89PNG")


def test_the_mood_legend_is_there_when_only_a_later_model_has_sentiment() -> None:
    models = [ModelUsage("v1", latency_p50_ms=120.0, latency_p95_ms=300.0),
              ModelUsage("v2", latency_p50_ms=90.0, latency_p95_ms=200.0, mood=Mood(4, -0.5, 0.2, 4, 2, 0))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = charts.latency_and_mood(_report(models))
    assert png is not None and png.startswith(b"\x89PNG")
