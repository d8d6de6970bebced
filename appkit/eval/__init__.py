"""What an app's evaluation returns, so ``appkit NAME eval`` can show any app's results the same way.

Each app scores what matters for it (a support bot: perplexity, BLEU, ROUGE-L, intent accuracy;
a writer: voice perplexity and length control); the CLI only needs a title, columns, rows of
already formatted cells, and the raw numbers for ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvalTable:
    """An evaluation's results: formatted ``rows`` under ``columns`` and the numbers in ``data``."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # printed under the table

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: the title and the raw numbers."""
        return {"title": self.title, **self.data}


def print_table(table: EvalTable) -> None:
    """Show ``table`` on the terminal: a rich table under its title, then its notes."""
    from rich.console import Console
    from rich.table import Table

    shown = Table(*table.columns, title=table.title)
    for row in table.rows:
        shown.add_row(*row)
    console = Console()
    console.print(shown)
    for note in table.notes:
        console.print(note, highlight=False)


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or "-" when there is none."""
    return "-" if value is None else format(value, spec)


__all__ = ["EvalTable", "fmt", "print_table"]
