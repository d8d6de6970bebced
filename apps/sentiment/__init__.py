"""The sentiment analyzer: a classifier trained on your labelled texts; batch analysis with a chart.

    appkit sentiment train --data labeled.csv
    appkit sentiment analyze reviews.csv --text-col review -o out.csv
    appkit sentiment "I love it"

From Python: ``appkit.load_app("sentiment").analyze(texts)`` (see analyzer.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.sentiment.app import APP, SentimentApp

if TYPE_CHECKING:
    from apps.sentiment.analyzer import SentimentAnalyzer, SentimentResult

__all__ = ["APP", "SentimentAnalyzer", "SentimentApp", "SentimentResult"]


def __getattr__(name: str) -> Any:
    # Lazy: the entry point loads this package for `appkit --help`, which must not import torch.
    if name in ("SentimentAnalyzer", "SentimentResult"):
        from apps.sentiment import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module 'apps.sentiment' has no attribute {name!r}")
