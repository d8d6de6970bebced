"""The report as one self-contained HTML file: tables and charts (PNG, base64-embedded), no external resources.

A manager opens it in any browser, offline; it can be mailed as an attachment. Customers'
example messages are shown with personal data replaced (see topics.py) and escaped.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appkit.insights.report import Report

TEMPLATE = "report.html.j2"


def render_html(report: Report, charts: dict[str, bytes]) -> str:
    """The HTML page of ``report`` with ``charts`` (name -> PNG bytes) embedded."""
    import jinja2

    from appkit.insights.tables import headline, report_tables

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    d = report.drift
    warning = ""
    if d is not None and d.warning:
        warning = (f"Drift warning: {d.score:.0%} of this period's customer messages are unlike the training data "
                   f"(threshold {d.threshold:.0%}). See the gaps and consider `appkit support retrain`.")
    return env.get_template(TEMPLATE).render(
        app=report.app, period=report.period.describe(), generated=f"{report.generated_at:%Y-%m-%d %H:%M} UTC",
        headline=headline(report), warning=warning, tables=report_tables(report), notes=report.notes,
        charts={name: base64.b64encode(png).decode("ascii") for name, png in charts.items()},
    )


def write_html(report: Report, charts: dict[str, bytes], path: Path) -> Path:
    """Write the page to ``path`` atomically (a reader never sees half a file)."""
    from appkit.files import write_text_atomic

    write_text_atomic(Path(path), render_html(report, charts), private=True)  # customers' words
    return Path(path)
