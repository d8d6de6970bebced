"""``appkit report``: how an app did over a period, in the terminal, as PNG charts, JSON and one HTML file.

Mounted by appkit.cli with ``cli.command("report")(report_command)``. Heavy imports (SQLAlchemy,
scikit-learn, matplotlib) happen inside the command so ``appkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from appkit.errors import ConfigError


def report_command(
    ctx: typer.Context,
    app: str = typer.Option("support", "--app", help="Which app's conversations."),
    since: str = typer.Option("7d", "--since", help="Start of the period: 7d, 24h, 2w, 90m, or a date (2026-12-01)."),
    until: Optional[str] = typer.Option(None, "--until", help="End of the period (default: now); same forms."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write one self-contained HTML file (charts embedded)."),
    charts: Optional[Path] = typer.Option(None, "--charts", help="Write the charts as PNG files into this folder."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every figure as JSON."),
    max_texts: int = typer.Option(20_000, "--max-texts", min=100,
                                  help="Topics and drift read at most this many customer messages (a random sample)."),
) -> None:
    """Resolution, handoffs by reason, ratings, sentiment, safety, latency per model; topics, gaps and drift."""
    import json

    from rich.console import Console

    from appkit.config import settings_from
    from appkit.insights.period import parse_period
    from appkit.insights.report import build_report
    from appkit.insights.terminal import print_report

    settings = settings_from(ctx)
    period = parse_period(since, until)  # a bad --since fails here, before the database is opened
    for option, path in (("--html", html), ("--json", json_out)):
        if path is not None and path.is_dir():
            raise ConfigError(f"{option} {path}: that is a folder; give a file name, e.g. {path / 'report.html'}.")
    with Console(stderr=True).status(f"reading the {app} conversations of {period.describe()}"):
        report = build_report(app, period, settings=settings, max_texts=max_texts)
    print_report(report)
    written: list[str] = []
    if html is not None or charts is not None:
        from appkit.insights.charts import render_charts

        pngs = render_charts(report)
        if charts is not None:
            written += _write_pngs(charts, pngs)
        if html is not None:
            from appkit.insights.html import write_html

            _guard(lambda: write_html(report, pngs, html), html)
            written.append(str(html))
    if json_out is not None:
        from appkit.files import write_text_atomic

        _guard(lambda: write_text_atomic(json_out, json.dumps(report.as_dict(), indent=2, default=str), private=True),
               json_out)
        written.append(str(json_out))
    if written:
        typer.echo("wrote " + ", ".join(written), err=True)


def _write_pngs(folder: Path, pngs: dict[str, bytes]) -> list[str]:
    from appkit.files import atomic_file

    out = []
    for name, png in pngs.items():
        path = folder / f"{name}.png"

        def write(path: Path = path, png: bytes = png) -> None:
            with atomic_file(path, "wb") as f:
                f.write(png)

        _guard(write, path)
        out.append(str(path))
    return out


def _guard(write: object, path: Path) -> None:
    """Run ``write``; an OS error (no permission, a full disk) is a one-line error naming ``path``."""
    try:
        write()  # type: ignore[operator]
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}.") from None
