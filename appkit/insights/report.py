"""``build_report``: an app's period read from the store, summed up, its topics found, its drift measured.

    from appkit.insights import build_report, parse_period
    report = build_report("support", parse_period("7d"), settings=load_settings())
    print(report.usage.total.handed_over_share, [g.name for g in report.topics.gaps], report.drift.score)

Topics and drift read the customers' messages; above ``max_texts`` of them (20,000 by default) a
seeded random sample is read instead, which the report says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from appkit.errors import NotEnoughDataError
from appkit.insights.drift import Drift
from appkit.insights.period import Period
from appkit.insights.topics import Topics
from appkit.insights.usage import Usage

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.insights.reference import Reference
    from appkit.store import Store

MAX_TEXTS = 20_000
_UNSET: Any = object()


@dataclass
class Report:
    """Everything one report shows."""

    app: str
    period: Period
    generated_at: datetime
    usage: Usage
    topics: Topics | None = None
    drift: Drift | None = None
    reference: str = ""  # what the drift and the topic names compare with
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"app": self.app, "since": self.period.start.isoformat(), "until": self.period.end.isoformat(),
                "generated_at": self.generated_at.isoformat(), "usage": self.usage.as_dict(),
                "topics": self.topics.as_dict() if self.topics else None,
                "drift": self.drift.as_dict() if self.drift else None, "reference": self.reference,
                "notes": self.notes, "seconds": self.seconds}


def build_report(app: str, period: Period, *, settings: Settings, store: Store | None = None,
                 reference: Reference | None = _UNSET, max_texts: int = MAX_TEXTS, seed: int = 0) -> Report:
    """The report of ``app`` over ``period``.

    Args:
        store: an open store (default: the one ``settings`` names, opened and closed here).
        reference: what the model was trained on (default: asked of the app; None: no drift).

    Raises:
        NotEnoughDataError: the store has no conversation of ``app``, or none started in ``period``.
    """
    from appkit.insights.usage import summarize

    from appkit.apps import get_app
    from appkit.insights.settings import insights_settings

    get_app(app)  # an unknown app is a ConfigError naming the installed ones
    threshold = insights_settings(settings).drift_warning
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    if store is None:
        from appkit.store import open_store

        with open_store(settings) as opened:
            return build_report(app, period, settings=settings, store=opened, reference=reference,
                                max_texts=max_texts, seed=seed)
    activity = store.activity(app, period.start, period.end)
    if not activity.conversations:
        raise _nothing_to_report(store, app, period)
    seconds["read"] = time.perf_counter() - clock
    usage = summarize(activity, period)
    seconds["summary"] = time.perf_counter() - clock - sum(seconds.values())
    report = Report(app, period, datetime.now(timezone.utc), usage, seconds=seconds)
    if reference is _UNSET:
        from appkit.insights.reference import load_reference

        reference, why = load_reference(app, settings)
        if why:
            report.notes.append(why)
    _topics_and_drift(report, reference, threshold, max_texts, seed)
    seconds["topics_drift"] = time.perf_counter() - clock - sum(seconds.values())
    return report


def _topics_and_drift(report: Report, reference: Reference | None, threshold: float, max_texts: int,
                      seed: int) -> None:
    import random
    from dataclasses import replace

    from appkit.data.pii import scrub_pii
    from appkit.insights.drift import Similarity, measure_drift
    from appkit.insights.topics import NEIGHBOURS, find_topics

    turns = [t for t in report.usage.turns if t.text.strip()]
    if not turns:
        report.notes.append("no customer messages with text: no topics or drift")
        return
    if len(turns) > max_texts:
        report.notes.append(f"topics and drift read a random sample of {max_texts:,} of the {len(turns):,} customer "
                            "messages")
        turns = random.Random(seed).sample(turns, max_texts)
    # As the model saw its training data: customers' personal data replaced ("order [ORDER_ID]").
    turns = [replace(t, text=scrub_pii(t.text)[0]) for t in turns]
    texts = [t.text for t in turns]
    if reference is None:
        report.topics = find_topics(turns, seed=seed)
        return
    report.reference = reference.source or f"model {reference.model}"
    similarity = Similarity(reference.texts, [*texts, *(reference.held_out or [])])
    sims, neighbours = similarity.nearest(texts, k=NEIGHBOURS)
    report.drift = measure_drift(reference.model, similarity, sims[:, 0], texts, reference.held_out or [],
                                 threshold=threshold)
    report.topics = find_topics(turns, reference_texts=reference.texts, reference_labels=reference.labels,
                                sims=sims, neighbours=neighbours, unlike_level=report.drift.unlike_level, seed=seed)
    report.drift.topic_shift = report.topics.shift


def _nothing_to_report(store: Store, app: str, period: Period) -> NotEnoughDataError:
    count, first, last = store.conversation_span(app)
    if count == 0:
        return NotEnoughDataError(f"the database ({store.url}) holds no {app} conversations yet, so there is nothing "
                                  f"to report; they are stored as customers talk to the bot (`appkit chat`, "
                                  "`appkit ask`, `appkit serve`).")
    assert first is not None and last is not None
    return NotEnoughDataError(
        f"no {app} conversation started between {period.describe()}; the database holds {count:,} from "
        f"{first:%Y-%m-%d} to {last:%Y-%m-%d} (widen --since, e.g. --since {_days_back(first)}d).")


def _days_back(moment: datetime) -> int:
    return max(1, (datetime.now(timezone.utc) - moment).days + 1)
