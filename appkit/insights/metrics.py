"""Drift gauges for ``appkit serve``'s /metrics: how far the last window's customer messages are from training.

The figures are the report's (appkit/insights/drift.py) over the last ``[insights]
metrics_window`` (7 days by default), for each served app that says what its model was trained
on. They are computed in a background thread at most every ``REFRESH_S`` seconds, never in the
scrape itself: a scrape answers at once with the latest figures (none before the first is ready).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.insights.drift import Drift
    from appkit.store import Store

REFRESH_S = 300.0
MAX_TEXTS = 5_000  # a sample is plenty for a share and a median, and keeps a refresh to seconds


class DriftCollector:
    """A prometheus-client collector of the drift of ``apps`` (those without a reference are skipped)."""

    def __init__(self, settings: Settings, store: Store, apps: Sequence[str], *, refresh_s: float = REFRESH_S) -> None:
        from appkit.apps import available_apps

        installed = available_apps()
        self.settings = settings
        self.store = store
        self.apps = [a for a in apps if hasattr(installed.get(a), "insights_reference")]
        self.refresh_s = refresh_s
        self.latest: dict[str, Drift] = {}
        self.errors: dict[str, str] = {}
        self._computed_at = -float("inf")
        self._running = False
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        self._refresh_if_stale()
        labels = ["app", "model"]
        score = GaugeMetricFamily("appkit_drift_score", "Share of the window's customer messages unlike the training "
                                  "data (under the 5th percentile of held-out messages' nearest-case similarity).",
                                  labels=labels)
        warning = GaugeMetricFamily("appkit_drift_warning", "1 when the drift score is above [insights] drift_warning.",
                                    labels=labels)
        threshold = GaugeMetricFamily("appkit_drift_threshold", "The [insights] drift_warning threshold.", labels=labels)
        similarity = GaugeMetricFamily("appkit_drift_nearest_similarity_median",
                                       "Median similarity of the window's messages to their closest training message.",
                                       labels=labels)
        unseen = GaugeMetricFamily("appkit_drift_unseen_words_share",
                                   "Share of the window's words that no training message has.", labels=labels)
        shift = GaugeMetricFamily("appkit_drift_topic_shift",
                                  "Jensen-Shannon distance of the window's topic mix from the training data's.",
                                  labels=labels)
        messages = GaugeMetricFamily("appkit_drift_messages", "Customer messages the drift figures were measured on.",
                                     labels=labels)
        for app, d in sorted(self.latest.items()):
            key = [app, d.model]
            score.add_metric(key, d.score)
            warning.add_metric(key, float(d.warning))
            threshold.add_metric(key, d.threshold)
            similarity.add_metric(key, d.similarity.get("p50", 0.0))
            unseen.add_metric(key, d.unseen_words)
            if d.topic_shift is not None:
                shift.add_metric(key, d.topic_shift)
            messages.add_metric(key, d.messages)
        yield from (score, warning, threshold, similarity, unseen, shift, messages)

    def _refresh_if_stale(self) -> None:
        with self._lock:
            if self._running or time.monotonic() - self._computed_at < self.refresh_s or not self.apps:
                return
            self._running = True
        threading.Thread(target=self.refresh, name="appkit-drift", daemon=True).start()

    def refresh(self) -> None:
        """Measure every app now (the background thread; tests call it directly)."""
        from appkit.errors import AppkitError
        from appkit.insights.period import parse_period
        from appkit.insights.report import build_report
        from appkit.insights.settings import insights_settings

        try:
            window = insights_settings(self.settings).metrics_window
            for app in self.apps:
                try:
                    report = build_report(app, parse_period(window), settings=self.settings, store=self.store,
                                          max_texts=MAX_TEXTS)
                except AppkitError as e:  # no conversations in the window, no trained model: no figure
                    self.latest.pop(app, None)
                    self.errors[app] = str(e)
                    continue
                if report.drift is None:
                    self.latest.pop(app, None)
                    self.errors[app] = "; ".join(report.notes)
                else:
                    self.latest[app] = report.drift
                    self.errors.pop(app, None)
        finally:
            with self._lock:
                self._computed_at = time.monotonic()
                self._running = False
