"""The period a report covers: ``--since 7d`` (or 24h, 2w, 90m, a date, a time) up to now or ``--until``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from appkit.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": timedelta(minutes=1), "min": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
          "w": timedelta(weeks=1)}
EXAMPLES = "a duration such as 7d, 24h, 2w or 90m, or a date/time such as 2026-12-01 or 2026-12-01T09:00"


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def days(self) -> list[date]:
        """Every UTC day the period touches, in order."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def describe(self) -> str:
        fmt = "%Y-%m-%d %H:%M"
        return f"{self.start:{fmt}} to {self.end:{fmt}} UTC"


def parse_moment(text: str, what: str, now: datetime) -> datetime:
    """A duration before ``now`` or an absolute date/time (UTC when no zone is given)."""
    match = _DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        if amount <= 0:
            raise ConfigError(f"{what} {text!r}: the duration must be more than 0.")
        return now - amount * _UNITS[unit]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not understood: expected {EXAMPLES}.") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_period(since: str = "7d", until: str | None = None, *, now: datetime | None = None) -> Period:
    """The period from ``since`` to ``until`` (default now).

    Raises:
        ConfigError: either is not understood, or the period is empty or starts in the future.
    """
    now = now or datetime.now(timezone.utc)
    start = parse_moment(since, "--since", now)
    end = parse_moment(until, "--until", now) if until else now
    if start >= end:
        raise ConfigError(f"--since {since!r} is not before --until {until or 'now'} "
                          f"({start:%Y-%m-%d %H:%M} >= {end:%Y-%m-%d %H:%M} UTC): the period is empty.")
    return Period(start, end)
