"""The Insights tab of ``appkit chat``: the report's numbers for the last period, kept up to date.

The same tables as ``appkit report`` (appkit/insights/tables.py), rebuilt in a worker thread
when the tab is shown, every ``REFRESH_S`` seconds while it is, and on ctrl+g. A period with no
conversations says so, as the command does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from appkit.tui.widgets.status import StatusChanged, StatusInfo

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.timer import Timer

    from appkit.config import Settings
    from appkit.insights.report import Report

NAME = "insights"
TITLE = "Insights"
REFRESH_S = 30.0


class InsightsPane(Vertical):
    """How the app did over the last period: per model, per day, handoffs, topics, gaps, drift."""

    app_name = NAME
    DEFAULT_CSS = """
    InsightsPane #insights-head { padding: 0 1; height: auto; }
    InsightsPane #insights-body { padding: 0 1; }
    InsightsPane .insights-table { margin: 1 0 0 0; height: auto; }
    """

    def __init__(self, *, settings: Settings, app: str = "support", since: str | None = None,
                 refresh_s: float = REFRESH_S, id: str | None = None) -> None:
        super().__init__(id=id)
        from appkit.insights.settings import insights_settings

        self.settings = settings
        self.report_app = app
        self.since = since or insights_settings(settings).metrics_window
        self.refresh_s = refresh_s
        self.status = StatusInfo(NAME, state="loading", speed=False)
        self.report: Report | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"Reading the {self.report_app} conversations of the last {self.since}…", id="insights-head")
        yield VerticalScroll(id="insights-body")

    # -- the AppPane contract -----------------------------------------------------------------

    def activate(self) -> None:
        if self._timer is None:
            self._timer = self.set_interval(self.refresh_s, self.do_regenerate)
        self.do_regenerate()

    def focus_default(self) -> None:
        self.query_one("#insights-body").focus()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def do_regenerate(self) -> None:
        """Rebuild the report now (ctrl+g)."""
        self._load()

    # -- loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="insights")
    def _load(self) -> None:
        from appkit.errors import AppkitError
        from appkit.insights.period import parse_period
        from appkit.insights.report import build_report

        try:
            report: Any = build_report(self.report_app, parse_period(self.since), settings=self.settings)
        except AppkitError as e:  # an empty period, an unreachable database: said, never raised
            report = str(e)
        self.app.call_from_thread(self._show, report)

    async def _show(self, report: Report | str) -> None:
        from rich.text import Text

        from appkit.insights.tables import headline, report_tables
        from appkit.insights.terminal import rich_table

        head = self.query_one("#insights-head", Static)
        body = self.query_one("#insights-body", VerticalScroll)
        await body.remove_children()
        if isinstance(report, str):
            head.update(Text(report))
            self._status("no data")
            return
        self.report = report
        head.update(Text.assemble((f"{report.app}, {report.period.describe()}\n", "bold"), headline(report)))
        widgets = [Static(rich_table(t), classes="insights-table") for t in report_tables(report)]
        widgets += [Static(Text(f"note: {n}", style="dim")) for n in report.notes]
        await body.mount_all(widgets)
        self._status(f"{report.usage.conversations:,} conversations, last {self.since}")

    def _status(self, text: str) -> None:
        self.status = StatusInfo(NAME, state="ready", model=text, speed=False)
        self.post_message(StatusChanged(self.status))
