"""What a reader did with a file: the shape it saw, what it kept and what it dropped, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ReadReport:
    """Statistics of one ``read_history`` call.

    ``dropped`` counts records or conversations left out, by reason; ``examples`` keeps the
    first place each reason happened (``file:line`` or ``file#record``) so a user can look.
    """

    path: str
    format: str = ""
    shape: str = ""
    # Which input column/key played which part, e.g. {"user": "instruction", "assistant": "response"}.
    columns: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    conversations: int = 0
    turns: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def drop(self, reason: str, where: str, n: int = 1) -> None:
        """Count ``n`` items left out for ``reason``; remember where it first happened."""
        self.dropped[reason] = self.dropped.get(reason, 0) + n
        self.examples.setdefault(reason, where)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    def summary(self) -> str:
        """A few human lines: what was read and what was left out."""
        used = ", ".join(f"{part}={col}" for part, col in self.columns.items())
        lines = [
            f"{self.path}: {self.format} file, {self.shape} shape" + (f" ({used})" if used else ""),
            f"  {self.rows} records -> {self.conversations} conversations, {self.turns} turns",
        ]
        for reason, count in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            lines.append(f"  left out {count}: {reason} (first at {self.examples.get(reason, '?')})")
        return "\n".join(lines)
