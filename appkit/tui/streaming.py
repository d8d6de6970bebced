"""Batch streamed text pieces so a fast model does not flood the UI's event loop.

A nano model on a GPU produces hundreds of pieces a second; one UI update per piece would
re-parse the Markdown that often and queue callbacks faster than the loop runs them. Pieces
are joined and handed over at most every ``interval`` seconds (20 updates/s reads as smooth);
a slow model still shows every piece as soon as it arrives, since its pieces are further apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

UPDATE_INTERVAL_S = 0.05


class Batcher:
    """Collects pieces; ``add`` returns the joined text when it is time to show it."""

    def __init__(self, interval: float = UPDATE_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._pending: list[str] = []
        self._last = float("-inf")  # the first piece is shown at once: it is the one people wait for

    def add(self, piece: str) -> str:
        """Queue ``piece``; returns the text to show now ('' to wait)."""
        self._pending.append(piece)
        now = self.clock()
        if now - self._last < self.interval:
            return ""
        self._last = now
        return self.flush()

    def flush(self) -> str:
        """Everything still queued."""
        text = "".join(self._pending)
        self._pending.clear()
        return text


def stream_batched(pieces: Iterable[str], show: Callable[[str], object], interval: float = UPDATE_INTERVAL_S) -> None:
    """Iterate ``pieces`` (in a worker thread), calling ``show`` with batched text."""
    batcher = Batcher(interval)
    for piece in pieces:
        text = batcher.add(piece)
        if text:
            show(text)
    rest = batcher.flush()
    if rest:
        show(rest)
