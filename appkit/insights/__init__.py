"""Reports over the store: how an app did, what customers asked about, how far they drifted from training.

    from appkit.insights import build_report, parse_period
    report = build_report("support", parse_period("7d"), settings=load_settings())

Names are imported lazily (PEP 562), so ``appkit --help`` loads none of this.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.insights.period import Period, parse_period
    from appkit.insights.reference import Reference
    from appkit.insights.report import Report, build_report
    from appkit.insights.settings import InsightsSettings

_EXPORTS = {
    "build_report": "appkit.insights.report",
    "Report": "appkit.insights.report",
    "parse_period": "appkit.insights.period",
    "Period": "appkit.insights.period",
    "Reference": "appkit.insights.reference",
    "InsightsSettings": "appkit.insights.settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'appkit.insights' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
