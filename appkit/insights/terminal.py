"""The report in a terminal: one rich table per section, the headline first, notes last."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.insights.report import Report
    from appkit.insights.tables import Table


def rich_table(table: Table) -> Any:
    """A rich Table for one report section (text, not markup: customers' words are shown as written)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = RichTable(title=Text(table.title, style="bold"), title_justify="left", box=None, pad_edge=False,
                    caption=Text(table.note, style="dim") if table.note else None, caption_justify="left")
    for i, name in enumerate(table.columns):
        out.add_column(name, justify="right" if i in table.numeric else "left",
                       overflow="fold", max_width=70 if name == "examples" else None)
    for i, row in enumerate(table.rows):
        out.add_row(*(Text(cell) for cell in row), style="bold red" if i in table.warn_rows else None)
    return out


def print_report(report: Report, console: Any = None) -> None:
    """Print every section of ``report``."""
    from rich.console import Console
    from rich.text import Text

    from appkit.insights.tables import headline, report_tables

    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # a pipe or a file: wide enough that tables do not fold
            console = Console(highlight=False, width=max(console.width, 140))
    console.print(Text(f"{report.app} report, {report.period.describe()}", style="bold"))
    console.print(Text(headline(report)))
    for table in report_tables(report):
        console.print()
        console.print(rich_table(table))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))
