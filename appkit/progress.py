"""One progress display for long work: a rich bar with ETA, or plain lines in a log.

A terminal gets a live bar (done/total, elapsed, ETA and any figures the work reports, such
as loss or tokens/s); a log file or CI, which cannot redraw a bar, gets one line every 30 s.

    with Progress("scoring replies", total=len(items)) as bar:
        for i, item in enumerate(items, 1):
            ...
            bar.update(i, loss=0.42)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

LINE_EVERY_S = 30.0


class Progress:
    """Progress of ``total`` units of work, shown while the ``with`` block runs."""

    def __init__(self, description: str, total: int, *, enabled: bool = True, start: int = 0,
                 fields: tuple[str, ...] = (), percent: bool = False) -> None:
        """``fields``: names of figures shown beside the bar; ``percent``: show the share done, not
        done/total (for work counted in units nobody reads, such as bytes of a file)."""
        self.description = description
        self.total = max(int(total), 0)
        self.enabled = enabled
        self.start = start
        self.fields = fields
        self.percent = percent
        self._done = start
        self._values: dict[str, str] = {name: "-" for name in fields}
        self._bar: Any = None
        self._task: Any = None
        self._plain = False
        self._started = time.perf_counter()
        self._last_line = self._started

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        if not console.is_terminal:
            self._plain = True
            return self
        columns = [TextColumn(f"[bold]{self.description}"), BarColumn(),
                   TaskProgressColumn() if self.percent else MofNCompleteColumn()]
        columns += [TextColumn(f"{name} {{task.fields[{name}]}}") for name in self.fields]
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        self._bar = RichProgress(*columns, console=console)
        self._bar.__enter__()
        self._task = self._bar.add_task(self.description, total=self.total, completed=self.start, **self._values)
        return self

    def update(self, completed: int, **values: float | str) -> None:
        """``completed`` units are done; ``values`` are the figures shown beside the bar."""
        self._done = completed
        for name, value in values.items():
            self._values[name] = f"{value:,.3g}" if isinstance(value, float) else str(value)
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, **self._values)
        elif self._plain and (time.perf_counter() - self._last_line >= LINE_EVERY_S or completed >= self.total):
            self._line()

    def set_total(self, total: int) -> None:
        """The work turned out larger or smaller (a time budget re-planned it)."""
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def _line(self) -> None:
        import sys

        self._last_line = time.perf_counter()
        elapsed = self._last_line - self._started
        done = self._done - self.start
        eta = elapsed / done * (self.total - self._done) if done > 0 else 0.0
        figures = "".join(f"  {k} {v}" for k, v in self._values.items())
        done = f"{self._done / max(self.total, 1):.0%}" if self.percent else f"{self._done}/{self.total}"
        print(f"{self.description} {done}{figures}  elapsed {elapsed:.0f}s  ETA {eta:.0f}s", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@contextlib.contextmanager
def progress_by_name(template: str = "{name}") -> Iterator[Callable[[str, int, int], None]]:
    """Transient bars for several jobs reported as ``update(name, done, total)`` (one bar per name,
    e.g. per model or classifier scored); ``template`` words each bar's label."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(template.format(name=name), total=total)
            bar.update(tasks[name], completed=done)

        yield update
