"""Prometheus metrics of one server (prometheus-client), answered at ``GET /metrics``.

Each server has its own registry, so two servers in one process (tests) keep apart. With
``--workers N`` each worker process counts its own requests: scrape them behind the load
balancer as separate targets, or run one worker per container (the usual set-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.engine import ReplyStats
    from appkit.serve.runtime import Runtime

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RATE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The counters and histograms a server updates, and the gauges read from its engines on scrape."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("appkit_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("appkit_http_request_duration_seconds", "Time to answer a request, to its last byte.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("appkit_time_to_first_token_seconds", "Time from a request to its reply's first token.",
                              ["model"], buckets=TTFT_BUCKETS, registry=r)
        self.tokens = Counter("appkit_generated_tokens", "Tokens generated (rate() of it is tokens/s).", ["model"],
                              registry=r)
        self.decode_rate = Histogram("appkit_decode_tokens_per_second", "Decode speed of each reply after its first token.",
                                     ["model"], buckets=RATE_BUCKETS, registry=r)
        self.generations = Counter("appkit_generations", "Replies by how they ended (stop, length, cancelled, error).",
                                   ["model", "finish_reason"], registry=r)
        self.batch = Histogram("appkit_batch_size", "Replies decoded together in each decode step.", ["model"],
                               buckets=BATCH_BUCKETS, registry=r)
        self.safety = Counter("appkit_safety_actions", "Safety policy decisions by app, direction and action.",
                              ["app", "direction", "action"], registry=r)
        self.handoffs = Counter("appkit_handoffs", "Conversations handed to a human, by reason.", ["reason"], registry=r)
        self.rejected = Counter("appkit_rejected_requests", "Requests refused before any work: rate_limited, overloaded.",
                                ["reason"], registry=r)
        if runtime is not None:
            r.register(_EngineCollector(runtime))
            from appkit.insights.metrics import DriftCollector  # drift of the apps' customer messages

            self.drift = DriftCollector(runtime.settings, runtime.store, [s.id for s in runtime.served.values()])
            r.register(self.drift)
            for served in runtime.served.values():
                engine = served.engine
                if engine is not None:
                    engine.on_step = self.batch.labels(served.id).observe

    def reply(self, model: str, stats: ReplyStats | None, *, tokens: int | None = None,
              finish: str | None = None) -> None:
        """Record one finished reply of ``model`` (``tokens``/``finish`` when it has no engine stats)."""
        reason = finish or (stats.finish_reason if stats is not None else "") or "unknown"
        self.generations.labels(model, reason).inc()
        count = tokens if tokens is not None else (stats.completion_tokens if stats is not None else 0)
        self.tokens.labels(model).inc(count)
        if stats is None:
            return
        if stats.time_to_first_token_s is not None and stats.completion_tokens:
            self.ttft.labels(model).observe(stats.time_to_first_token_s)
        if stats.tokens_per_second:
            self.decode_rate.labels(model).observe(stats.tokens_per_second)

    def moderation(self, app: str, moderation: dict[str, Any] | None) -> None:
        """Count the safety actions in a stored moderation dict ({action, direction} or {input, output})."""
        if not moderation:
            return
        if "action" in moderation:
            self.safety.labels(app, str(moderation.get("direction", "input")), str(moderation["action"])).inc()
            return
        for direction in ("input", "output"):
            decision = moderation.get(direction)
            if isinstance(decision, dict) and "action" in decision:
                self.safety.labels(app, direction, str(decision["action"])).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _EngineCollector:
    """Queue depth, running replies and gate occupancy, read from the engines at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        queued = GaugeMetricFamily("appkit_queue_depth", "Replies waiting for a place in the batch.", labels=["model"])
        running = GaugeMetricFamily("appkit_running_replies", "Replies being generated now.", labels=["model"])
        admitted = GaugeMetricFamily("appkit_admitted_requests", "Requests inside a model's gate (running or waiting).",
                                     labels=["model"])
        for served in self.runtime.served.values():
            engine = served.engine
            if engine is not None:
                queued.add_metric([served.id], engine.queue_depth)
                running.add_metric([served.id], engine.running)
            admitted.add_metric([served.id], served.gate.inside)
        yield from (queued, running, admitted)
