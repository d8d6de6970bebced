"""How long `appkit report` takes on a support store of 100,000 messages, on SQLite and on PostgreSQL.

A realistic store is generated first, as the support bot (apps/support/bot.py) would have written
it over the last 30 days: a few thousand conversations (``--turns``: 8 customer messages each
on average, ~8,000 conversations for 100k messages); the customers' messages drawn from
Bitext's support requests (``instruction`` column, lightly varied) and short follow-ups, each
scored by a sentiment model and checked by the safety policy (a moderation event per message, a
few flagged, blocked or escalated); the bot's replies from two models (``support-v4`` promoted
over ``support-v3`` on day 18, then a 15% canary of v3), with latencies, token counts and
grounding; ratings (a few changed later); handoffs (``handoff:REASON`` moderation events, status
``escalated``, the handoff notice) when the customer asks for a person, the mood drops, nothing
fits or safety escalates; agents' replies after them; conversations closed, archived or left
open. Three intents are never in the model's reference and grow over the month (what drift and
the topic gaps should find), and 3% of the conversations started before the period (the report
must leave them out).

The rows are inserted in bulk (SQLAlchemy Core ``insert()`` on the ORM tables, so every value
goes through the same column types as the Store's own writes); through the per-message Store
API the same rows take minutes (one transaction per call). Before timing, ``--verify-messages``
messages of the same generator are written both ways (bulk, and through
Store.create_conversation / append_message / agent_reply / rename / record_moderation /
set_status / add_feedback, then backdated) and the two reports must be equal; every count of
the 100k report must equal what was generated.

Timed per backend, in this process after the store is generated and scikit-learn, SciPy and
matplotlib are imported (untimed, so both backends compare the same work):

- ``report``: ``build_report("support", parse_period("30d"), settings=...)`` exactly as `appkit
  report` calls it (it opens the store; no trained model in the bench home, so no drift);
- ``report+ref``: the same with a reference (``--reference bitext``: what a model trained on
  24 of Bitext's intents saw, its validation messages held out): drift and intent-named topics,
  what a deployed bot's report computes;
- ``charts+HTML``: ``render_charts`` and ``write_html``, as ``appkit report --html`` does, for
  each report;
- ``cli``: one fresh ``python -m appkit report --app support --since 30d --html out.html``
  process (APPKIT_HOME and APPKIT_DATABASE_URL set, imports included): the wall time a user waits.

``report.seconds`` (read, summary, topics_drift) is in the JSON line too: where the time goes.

PostgreSQL runs in a fresh database (``appkit_bench_<random>``) created on the server of
``--postgres-url`` and dropped afterwards. Target: the report (numbers) under 30 s on 100k
messages on each backend, on 2 CPU cores.

    python bench/report.py                                  # both backends, 100,000 messages
    python bench/report.py --backend sqlite --messages 20000
    python bench/report.py --html-out /tmp/report.html      # keep the 100k report's HTML (with reference)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_DATA, REPO, code_version  # noqa: E402
from report_store import (APP, PERIOD_DAYS, Generator, History, bitext_reference, expected,  # noqa: E402
                          observed, read_bitext, write_bulk, write_with_store_api)

TARGET_S = 30.0
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --- the measurements ------------------------------------------------------------------------------------------


class Database:
    """A fresh database of ``backend`` (SQLite file or PostgreSQL database), removed on exit."""

    def __init__(self, backend: str, home: Path, pg_url: str, label: str) -> None:
        self.backend, self.pg_url, self.name = backend, pg_url, f"appkit_bench_{label}_{uuid.uuid4().hex[:8]}"
        self.url = f"sqlite:///{home / (label + '.db')}" if backend == "sqlite" else ""

    def __enter__(self) -> Database:
        if self.backend == "postgresql":
            from sqlalchemy.engine import make_url

            with _admin(self.pg_url) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
            self.url = make_url(self.pg_url).set(database=self.name).render_as_string(hide_password=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.backend == "postgresql":
            with _admin(self.pg_url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.url:
            Path(self.url.removeprefix("sqlite:///")).unlink(missing_ok=True)


def _admin(url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        return psycopg.connect(libpq, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        print(f"error: PostgreSQL at {make_url(url).render_as_string(hide_password=True)} is unreachable "
              f"({' '.join(str(e).split())}); pass --postgres-url or --backend sqlite.", file=sys.stderr)
        sys.exit(2)


def comparable(report: Any) -> dict[str, Any]:
    d = report.as_dict()
    for key in ("generated_at", "seconds", "since", "until"):
        d.pop(key, None)
    return d


def verify(gen_rows: list[dict[str, str]], backend: str, home: Path, pg_url: str, messages: int, reference: Any,
           seed: int) -> dict[str, Any]:
    """Write a small history both ways; their reports must be equal (and equal to what was generated)."""
    from appkit.config import load_settings
    from appkit.insights.period import parse_period
    from appkit.insights.report import build_report
    from appkit.store import open_store

    history = Generator(gen_rows, seed=seed + 1).history(messages)
    reports, seconds = [], {}
    for how, write in (("bulk", write_bulk), ("store_api", write_with_store_api)):
        with Database(backend, home, pg_url, f"verify_{how}") as db, open_store(url=db.url, upgrade=True) as store:
            started = time.perf_counter()
            write(store, history)
            seconds[how] = round(time.perf_counter() - started, 2)
            settings = load_settings(home=home, database_url=db.url)
            reports.append(build_report(APP, parse_period("30d", now=history.now + timedelta(seconds=1)),
                                        settings=settings, store=store, reference=reference))
    same = comparable(reports[0]) == comparable(reports[1])
    counts = observed(reports[0]) == expected(history)
    if not same:
        a, b = comparable(reports[0]), comparable(reports[1])
        diff = [k for k in a if a[k] != b[k]]
        print(f"  verify {backend}: the two reports differ in {diff}", file=sys.stderr)
    if not counts:
        print(f"  verify {backend}: report {observed(reports[0])}\n  generated {expected(history)}", file=sys.stderr)
    return {"messages": len(history.messages), "conversations": len(history.conversations), "same_report": same,
            "counts_match": counts, "write_s": seconds}


def run_backend(backend: str, history: History, rows: list[dict[str, str]], reference: Any, args: argparse.Namespace,
                home: Path, html_out: Path | None) -> dict[str, Any]:
    from appkit.config import load_settings
    from appkit.insights.charts import render_charts
    from appkit.insights.html import write_html
    from appkit.insights.period import parse_period
    from appkit.insights.report import build_report
    from appkit.store import open_store

    out: dict[str, Any] = {}
    if args.verify_messages:
        print(f"  {backend}: verifying bulk rows against the Store API on {args.verify_messages} messages",
              file=sys.stderr, flush=True)
        out["verify"] = verify(rows, backend, home, args.postgres_url, args.verify_messages, reference, args.seed)
    with Database(backend, home, args.postgres_url, "store") as db:
        started = time.perf_counter()
        with open_store(url=db.url, upgrade=True) as store:
            write_bulk(store, history)
        out["generate_s"] = round(time.perf_counter() - started, 2)
        print(f"  {backend}: {len(history.messages):,} messages written in {out['generate_s']:.1f} s",
              file=sys.stderr, flush=True)
        settings = load_settings(home=home, database_url=db.url)
        for label, reference_arg in (("report", None), ("report+ref", reference)):
            if label == "report+ref" and reference is None:
                continue
            kwargs = {} if reference_arg is None else {"reference": reference_arg}
            started = time.perf_counter()
            report = build_report(APP, parse_period("30d"), settings=settings, **kwargs)
            report_s = time.perf_counter() - started
            started = time.perf_counter()
            pngs = render_charts(report)
            path = (html_out if (html_out and label == "report+ref") or (html_out and reference is None)
                    else home / f"{backend}-{label}.html")
            write_html(report, pngs, path)
            charts_s = time.perf_counter() - started
            u = report.usage
            figures = {"report_s": round(report_s, 2), "charts_html_s": round(charts_s, 2),
                       "total_s": round(report_s + charts_s, 2), "stages_s": {k: round(v, 2) for k, v in
                                                                              report.seconds.items()},
                       "conversations": u.conversations, "customer_messages": u.customer_messages,
                       "bot_replies": u.bot_replies, "agent_replies": u.agent_replies,
                       "handed_over_share": round(u.total.handed_over_share or 0, 4),
                       "resolved_share": round(u.total.resolved_share or 0, 4),
                       "topics": len(report.topics.topics) if report.topics else 0,
                       "gaps": [g.name for g in report.topics.gaps] if report.topics else [],
                       "drift_score": round(report.drift.score, 4) if report.drift else None,
                       "charts": sorted(pngs), "html_kb": round(path.stat().st_size / 1024),
                       "counts_match": observed(report) == expected(history), "notes": report.notes}
            if not figures["counts_match"]:
                print(f"  {backend} {label}: report {observed(report)}\n  generated {expected(history)}",
                      file=sys.stderr)
            out[label] = figures
            print(f"  {backend} {label}: {report_s:.1f} s, charts+HTML {charts_s:.1f} s {report.seconds}",
                  file=sys.stderr, flush=True)
            del report, pngs
        out["cli_s"] = run_cli(db.url, home)
        print(f"  {backend} cli: {out['cli_s']:.1f} s", file=sys.stderr, flush=True)
    return out


def warm_up() -> None:
    """Import what a report uses (scikit-learn, SciPy, matplotlib), untimed: in-process figures compare the work
    itself on both backends; the CLI's figure includes the imports, as a user waits for them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import scipy.sparse  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401

    import appkit.insights.charts  # noqa: F401
    import appkit.insights.html  # noqa: F401
    import appkit.insights.report  # noqa: F401
    import appkit.store  # noqa: F401


def run_cli(url: str, home: Path) -> float:
    """Wall seconds of one fresh `appkit report --app support --since 30d --html out.html` process."""
    env = {**os.environ, "APPKIT_HOME": str(home), "APPKIT_DATABASE_URL": url}
    out = home / "cli-report.html"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "appkit", "report", "--app", APP, "--since", f"{PERIOD_DAYS}d",
                           "--html", str(out)], env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not out.is_file():
        print(f"error: appkit report exited {done.returncode}:\n{done.stderr[-2000:]}", file=sys.stderr)
        return float("nan")
    return round(seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the generated store")
    parser.add_argument("--turns", type=float, default=8.0,
                        help="customer messages per conversation, on average (8: ~8,000 conversations for 100k)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Bitext's support CSV or its folder")
    parser.add_argument("--postgres-url", default=os.environ.get("APPKIT_TEST_POSTGRES_URL", DEFAULT_PG_URL),
                        help="a PostgreSQL server's URL (a fresh database is created there and dropped)")
    parser.add_argument("--reference", choices=("bitext", "none"), default="bitext",
                        help="also time the report against a reference (drift, intent topics)")
    parser.add_argument("--verify-messages", type=int, default=500,
                        help="messages written both ways (bulk and Store API) to check they report the same; 0: skip")
    parser.add_argument("--html-out", type=Path, default=None, help="keep the last backend's report HTML here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = read_bitext(args.data)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    if "postgresql" in backends:
        _admin(args.postgres_url).close()  # unreachable: exit 2 now, not after generating
    reference = bitext_reference(rows, args.seed) if args.reference == "bitext" else None

    started = time.perf_counter()
    warm_up()
    imports_s = time.perf_counter() - started
    started = time.perf_counter()
    history = Generator(rows, seed=args.seed).history(args.messages, args.turns)
    plan_s = time.perf_counter() - started
    print(f"  generated {len(history.messages):,} messages, {len(history.conversations):,} conversations, "
          f"{len(history.events):,} moderation events, {len(history.feedback):,} ratings in {plan_s:.1f} s",
          file=sys.stderr, flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="appkit-report-bench-") as tmp:
        home = Path(tmp)
        for backend in backends:
            results[backend] = run_backend(backend, history, rows, reference, args, home, args.html_out)

    print(f"store: {len(history.messages):,} messages, {len(history.conversations):,} conversations "
          f"({results[backends[0]]['report']['conversations']:,} in the period), {len(history.events):,} moderation "
          f"events, {len(history.feedback):,} ratings; built in memory in {plan_s:.1f} s")
    header = (f"{'backend':<11} {'report':<11} {'generate s':>10} {'report s':>9} {'charts+HTML s':>13} {'total s':>8} "
              f"{'cli s':>6} {'convs':>6} {'cust msgs':>9} {'handoff':>8} {'topics':>6} {'drift':>6} {'counts':>6}")
    print(header)
    for backend, r in results.items():
        for label in ("report", "report+ref"):
            if label not in r:
                continue
            f = r[label]
            print(f"{backend:<11} {label:<11} {r['generate_s']:>10.1f} {f['report_s']:>9.1f} "
                  f"{f['charts_html_s']:>13.1f} {f['total_s']:>8.1f} {r['cli_s'] if label == 'report' else '':>6} "
                  f"{f['conversations']:>6} "
                  f"{f['customer_messages']:>9} {f['handed_over_share']:>8.1%} {f['topics']:>6} "
                  f"{'-' if f['drift_score'] is None else format(f['drift_score'], '.1%'):>6} "
                  f"{'ok' if f['counts_match'] else 'WRONG':>6}")
        if "verify" in r:
            v = r["verify"]
            print(f"{backend:<11} verify: {v['messages']} messages written in bulk and through the Store API: "
                  f"same report {'yes' if v['same_report'] else 'NO'}, counts {'ok' if v['counts_match'] else 'WRONG'}")
    worst = max(r[label]["report_s"] for r in results.values() for label in ("report", "report+ref") if label in r)
    met = worst < TARGET_S and all(r[label]["counts_match"] for r in results.values()
                                   for label in ("report", "report+ref") if label in r)
    print(f"target: report < {TARGET_S:.0f} s on {args.messages:,} messages on each backend, counts right: "
          f"{'met' if met else 'NOT met'} (slowest {worst:.1f} s)")
    print(json.dumps({"bench": "report", "code": code_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                      "python": platform.python_version(), "messages": len(history.messages),
                      "conversations": len(history.conversations), "events": len(history.events),
                      "ratings": len(history.feedback), "imports_s": round(imports_s, 2), "plan_s": round(plan_s, 2),
                      "results": results, "target_s": TARGET_S, "target_met": met}, default=str))


if __name__ == "__main__":
    main()
