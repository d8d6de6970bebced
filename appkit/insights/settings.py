"""The ``[insights]`` table of appkit.toml: when drift is worth a warning, and the window /metrics reads.

    [insights]
    drift_warning = 0.15   # warn when more than this share of customers' messages is unlike the training data
    metrics_window = "7d"  # `appkit serve` exports the drift of the conversations of this last period
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from appkit.errors import ConfigError

DEFAULT_WARNING = 0.15  # three times the share expected when nothing drifted (5%, see drift.py)


@dataclass(frozen=True)
class InsightsSettings:
    """Thresholds and windows of `appkit report` and the drift gauges of `appkit serve`."""

    drift_warning: float = DEFAULT_WARNING
    metrics_window: str = "7d"

    def __post_init__(self) -> None:
        if not 0 < self.drift_warning <= 1:
            raise ConfigError(f"[insights] drift_warning = {self.drift_warning}: expected a share above 0 and at "
                              f"most 1 (of customers' messages unlike the training data; default {DEFAULT_WARNING}).")
        from appkit.insights.period import parse_moment

        parse_moment(self.metrics_window, "[insights] metrics_window", datetime.now(timezone.utc))


def insights_settings(settings: object) -> InsightsSettings:
    """The ``[insights]`` table of ``settings`` (its defaults when settings have none)."""
    found = getattr(settings, "insights", None)
    return found if isinstance(found, InsightsSettings) else InsightsSettings()

