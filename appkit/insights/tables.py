"""The report as titled tables of text: one definition shared by the terminal, the HTML file and the TUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appkit.insights.report import Report
    from appkit.insights.usage import ModelUsage

MAX_TOPICS = 20
REASONS = {"asked_for_human": "asked for a human", "low_confidence": "low confidence", "safety": "safety",
           "sentiment_drop": "sentiment drop", "unknown": "other (set by hand)"}


@dataclass
class Table:
    """One section: a title, column names, rows of text; ``chart`` names its chart, if any."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""
    chart: str = ""
    numeric: set[int] = field(default_factory=set)  # columns to right-align
    warn_rows: set[int] = field(default_factory=set)  # rows to mark (drift above the threshold)


def pct(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _mood(m: ModelUsage) -> str:
    if m.mood.start is None or m.mood.end is None:
        return "-"
    return f"{m.mood.start:+.2f} -> {m.mood.end:+.2f}"


def headline(report: Report) -> str:
    u = report.usage
    t = u.total
    parts = [f"{u.conversations:,} conversations", f"{pct(t.resolved_share)} resolved",
             f"{pct(t.handed_over_share)} handed over", f"{pct(t.positive_share)} of {t.rated:,} ratings good"]
    if report.drift is not None:
        parts.append(f"drift {report.drift.score:.0%}" + (" (WARNING)" if report.drift.warning else ""))
    return "; ".join(parts)


def report_tables(report: Report) -> list[Table]:
    """Every section of ``report`` that has something to show, in reading order."""
    u = report.usage
    out: list[Table] = []
    models = Table("models", "Per model", ["model", "conv.", "resolved", "handed over", "open", "replies",
                                            "rated", "rated good", "p50 latency", "p95 latency", "sentiment start->end"],
                   chart="models", numeric=set(range(1, 10)))
    for m in [*u.models, u.total] if len(u.models) > 1 else [u.total]:
        models.rows.append([m.model, f"{m.conversations:,}", pct(m.resolved_share), pct(m.handed_over_share),
                            f"{m.open:,}", f"{m.replies:,}", f"{m.rated:,}", pct(m.positive_share),
                            _ms(m.latency_p50_ms), _ms(m.latency_p95_ms), _mood(m)])
    models.note = (f"{u.customer_messages:,} customer messages, {u.bot_replies:,} replies by the bot, "
                   f"{u.agent_replies:,} by people. A conversation counts for the model of its first reply.")
    out.append(models)

    days = Table("days", "Volume per day", ["day (UTC)", "conversations", "customer messages", "resolved",
                                            "handed over", "open"], chart="volume", numeric=set(range(1, 6)))
    for d in u.days:
        if not d.conversations and not d.customer_messages and len(u.days) > 1:
            continue
        days.rows.append([d.day.isoformat(), f"{d.conversations:,}", f"{d.customer_messages:,}", f"{d.resolved:,}",
                          f"{d.handed_over:,}", f"{d.open:,}"])
    if len(days.rows) < len(u.days):
        days.note = f"{len(u.days) - len(days.rows)} of the {len(u.days)} days had no conversations (not listed)."
    out.append(days)

    if u.handoff_reasons:
        total = sum(u.handoff_reasons.values())
        out.append(Table("handoffs", "Handed over, by reason", ["reason", "conversations", "share"],
                         [[REASONS.get(r, r), f"{n:,}", pct(n / total)] for r, n in u.handoff_reasons.items()],
                         numeric={1, 2}))
    mood = u.total.mood
    if mood.conversations:
        out.append(Table("sentiment", "Customer sentiment (-1 upset .. +1 pleased)",
                         ["conversations scored", "at the start", "at the end", "compared", "better", "worse"],
                         [[f"{mood.conversations:,}", num(mood.start, "+.2f"), num(mood.end, "+.2f"),
                           f"{mood.compared:,}", f"{mood.improved:,}", f"{mood.worsened:,}"]],
                         note="start and end: the mean of each conversation's first and last scored customer message; "
                              "better/worse: moved by 0.25 or more.", chart="latency_mood", numeric=set(range(6))))
    if u.safety:
        out.append(Table("safety", "Safety actions, by label", ["direction", "action", "label", "count"],
                         [[d, a, label, f"{n:,}"] for d, a, label, n in u.safety], numeric={3}))
    out += _topic_tables(report)
    if report.drift is not None:
        out.append(_drift_table(report))
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:,.0f} ms")


def _topic_tables(report: Report) -> list[Table]:
    if report.topics is None:
        return []
    t = report.topics
    topics = Table("topics", "Topics", ["topic", "kind", "messages", "share", "in training", "handed over",
                                        "rated good", "trouble", "similarity"], chart="topics",
                   numeric=set(range(2, 9)), note=t.method + ". Trouble: handed over or rated bad.")
    for topic in t.topics[:MAX_TOPICS]:
        topics.rows.append([topic.name, topic.kind, f"{topic.messages:,}", pct(topic.share, 1),
                            pct(topic.reference_share, 1), pct(topic.handoff_rate), pct(topic.positive_share),
                            pct(topic.trouble), num(topic.similarity, ".2f")])
    if len(t.topics) > MAX_TOPICS:
        topics.note += f" {len(t.topics) - MAX_TOPICS} smaller topics not shown."
    gaps = Table("gaps", "Gaps: the topics the bot handles worst", ["topic", "messages", "trouble", "examples"],
                 numeric={1, 2}, note=f"topics in more trouble than the bot overall ({t.overall_trouble:.0%})")
    for topic in t.gaps:
        gaps.rows.append([topic.name + (" (new)" if topic.kind == "new" else ""), f"{topic.messages:,}",
                          pct(topic.trouble), " | ".join(topic.examples)])
    if not gaps.rows:
        gaps.note = f"no topic is in more trouble than the bot overall ({t.overall_trouble:.0%})."
    return [topics, gaps]


def _drift_table(report: Report) -> Table:
    d = report.drift
    assert d is not None
    table = Table("drift", "Drift from the training data", ["measure", "this period", "held-out (no drift)"],
                  chart="drift", numeric={1, 2},
                  note=f"compared with {report.reference}; the unlike level ({d.unlike_level:.2f}) is set on "
                       f"{d.calibration}. Warning above {d.threshold:.0%} ([insights] drift_warning).")
    table.rows = [
        ["messages unlike the training data (drift score)", pct(d.score, 1) + (" WARNING" if d.warning else ""),
         pct(d.expected, 1)],
        ["median similarity to the closest training message", num(d.similarity.get("p50"), ".2f"),
         num(d.reference_similarity.get("p50"), ".2f")],
        ["words never seen in training", pct(d.unseen_words, 1), pct(d.reference_unseen_words, 1)],
        ["topic mix vs training (Jensen-Shannon distance, 0-1)", num(d.topic_shift, ".2f"), "0.00"],
    ]
    if d.warning:
        table.warn_rows = {0}
    return table
