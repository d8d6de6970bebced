"""The report's charts as PNG bytes (matplotlib, no display needed): one figure per section.

Each function returns None when its section has nothing to draw, so callers simply skip it.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.insights.report import Report

COLOURS = {"resolved": "#2e7d32", "handed_over": "#ef6c00", "open": "#9e9e9e", "period": "#1565c0",
           "reference": "#bdbdbd", "warn": "#c62828"}
LABELS = {"resolved": "resolved", "handed_over": "handed over", "open": "open"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display; a no-op when a backend is already chosen
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float = 8.0, height: float = 3.2, columns: int = 1) -> tuple[Any, Any]:
    fig, axes = _pyplot().subplots(1, columns, figsize=(width, height), dpi=100)
    for ax in axes if columns > 1 else [axes]:
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return buffer.getvalue()


def volume(report: Report) -> bytes | None:
    """Conversations per day, stacked by outcome."""
    days = report.usage.days
    if not any(d.conversations for d in days):
        return None
    fig, ax = _figure()
    x = list(range(len(days)))
    bottom = [0] * len(days)
    for outcome in ("resolved", "handed_over", "open"):
        values = [getattr(d, outcome) for d in days]
        ax.bar(x, values, bottom=bottom, color=COLOURS[outcome], label=LABELS[outcome], width=0.8)
        bottom = [b + v for b, v in zip(bottom, values)]
    step = max(1, math.ceil(len(days) / 8))  # at most 8 dates: more run into each other
    ax.set_xticks(x[::step], [d.day.strftime("%b %d") for d in days][::step])
    ax.set_ylabel("conversations")
    ax.set_title("Conversations per day")
    ax.legend(frameon=False, ncols=3, loc="upper left")
    return _png(fig)


def models(report: Report) -> bytes | None:
    """Resolved, handed over and positive-rating shares, per model."""
    rows = [m for m in report.usage.models if m.conversations or m.replies]
    if not rows:
        return None
    fig, ax = _figure(8.0, 0.9 + 0.6 * len(rows) * 1.5)
    series = [("resolved", "resolved_share", COLOURS["resolved"]), ("handed over", "handed_over_share",
                                                                     COLOURS["handed_over"]),
              ("rated good", "positive_share", COLOURS["period"])]
    height = 0.8 / len(series)
    for k, (label, attr, colour) in enumerate(series):
        values = [getattr(m, attr) or 0.0 for m in rows]
        ys = [i + k * height for i in range(len(rows))]
        ax.barh(ys, values, height=height, color=colour, label=label)
        for y, v, m in zip(ys, values, rows):
            if getattr(m, attr) is not None:
                ax.text(v + 0.01, y, f"{v:.0%}", va="center", fontsize=8)
    ax.set_yticks([i + height for i in range(len(rows))], [m.model for m in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_title("Per model: resolved, handed over, rated good")
    ax.legend(frameon=False, ncols=3, loc="lower right", fontsize=8)
    return _png(fig)


def latency_and_mood(report: Report) -> bytes | None:
    """Reply latency p50/p95 and customers' mood at the start and the end, per model."""
    rows = [m for m in report.usage.models if m.latency_p50_ms is not None or m.mood.conversations]
    if not rows:
        return None
    fig, (left, right) = _figure(9.0, 1.2 + 0.5 * len(rows), columns=2)
    names = [m.model for m in rows]
    ys = list(range(len(rows)))
    p50 = [m.latency_p50_ms or 0 for m in rows]
    p95 = [m.latency_p95_ms or 0 for m in rows]
    left.barh(ys, p95, color=COLOURS["reference"], label="p95")
    left.barh(ys, p50, color=COLOURS["period"], label="p50")
    left.set_yticks(ys, names)
    left.invert_yaxis()
    left.set_xlabel("ms")
    left.set_title("Reply latency")
    left.legend(frameon=False, fontsize=8)
    labelled = False  # the first model with a mood names the markers (a model may have none)
    for y, m in zip(ys, rows):
        if m.mood.start is not None and m.mood.end is not None:
            right.plot([m.mood.start, m.mood.end], [y, y], color=COLOURS["reference"], zorder=1)
            right.scatter([m.mood.start], [y], color=COLOURS["open"], zorder=2, label=None if labelled else "start")
            right.scatter([m.mood.end], [y], color=COLOURS["period"], zorder=3, label=None if labelled else "end")
            labelled = True
    right.set_xlim(-1, 1)
    right.axvline(0, color="#e0e0e0", zorder=0)
    right.set_yticks(ys, ["" for _ in ys])
    right.invert_yaxis()
    right.set_title("Customer sentiment: start -> end")
    if labelled:
        right.legend(frameon=False, fontsize=8)
    else:
        right.text(0, (len(rows) - 1) / 2, "no sentiment recorded", ha="center", va="center", color="#888888")
    return _png(fig)


def topics(report: Report, top: int = 15) -> bytes | None:
    """The biggest topics by messages, coloured by trouble (handed over or rated bad)."""
    if report.topics is None or not report.topics.topics:
        return None
    rows = report.topics.topics[:top]
    fig, ax = _figure(8.0, 0.8 + 0.32 * len(rows))
    cmap = _pyplot().get_cmap("RdYlGn_r")
    bars = ax.barh(range(len(rows)), [t.messages for t in rows], color=[cmap(min(t.trouble, 1.0)) for t in rows])
    for bar, t in zip(bars, rows):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {t.trouble:.0%}" + (" new" if t.kind == "new"
                                                                                                    else ""),
                va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [t.name[:40] for t in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("customer messages (label: share handed over or rated bad)")
    ax.set_title("Topics")
    return _png(fig)


def drift(report: Report) -> bytes | None:
    """Nearest-case similarity of the period's messages next to held-out ones, with the unlike level."""
    d = report.drift
    if d is None or not d.histogram:
        return None
    fig, ax = _figure()
    edges = d.histogram["edges"]
    width = edges[1] - edges[0]
    centres = [e + width / 2 for e in edges[:-1]]
    ax.bar(centres, d.histogram["reference"], width=width * 0.9, color=COLOURS["reference"],
           label="held-out messages (no drift)")
    ax.bar(centres, d.histogram["period"], width=width * 0.5, color=COLOURS["period"], label="this period")
    ax.axvline(d.unlike_level, color=COLOURS["warn"] if d.warning else "#616161", linestyle="--",
               label=f"unlike training below {d.unlike_level:.2f}")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_xlabel("similarity to the closest training message")
    ax.set_title(f"Drift: {d.score:.0%} of messages unlike the training data (warning above {d.threshold:.0%})")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return _png(fig)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


CHARTS = {"volume": volume, "models": models, "latency_mood": latency_and_mood, "topics": topics, "drift": drift}


def render_charts(report: Report) -> dict[str, bytes]:
    """Every chart the report has data for, by name."""
    out = {}
    for name, draw in CHARTS.items():
        png = draw(report)
        if png is not None:
            out[name] = png
    return out
