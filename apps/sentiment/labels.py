"""Label names and polarity: what a label column's values mean and where each sits on [-1, 1].

A label column holds any values. Three numeric conventions are named, because a reader of
``label=1`` cannot tell what it means: {0, 1} and {-1, 1} are negative/positive (SST-2, IMDb,
Sentiment140 after mapping), {-1, 0, 1} is negative/neutral/positive. Everything else (star
ratings 1..5, SST-5's 0..4, names such as "pos"/"angry") is kept as written.

Polarity gives each label a value in [-1, 1] so one number, ``score`` = sum of p * value, can
summarise a prediction (the support bot uses it): numeric labels spread linearly from their
smallest (-1) to their largest (+1) value, known words by their meaning; labels without an
order (e.g. "sports", "politics") have no polarity and no score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

NAMED = {
    ("0", "1"): ("negative", "positive"),
    ("-1", "1"): ("negative", "positive"),
    ("-1", "0", "1"): ("negative", "neutral", "positive"),
}
WORDS = {
    "very negative": -1.0, "very_negative": -1.0, "negative": -1.0, "neg": -1.0, "bad": -1.0,
    "neutral": 0.0, "neu": 0.0, "mixed": 0.0,
    "positive": 1.0, "pos": 1.0, "good": 1.0, "very positive": 1.0, "very_positive": 1.0,
}


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def canonical(value: str) -> str:
    """One spelling per label value: stripped, and ``4.0`` read as ``4`` (rating columns saved as floats)."""
    value = value.strip()
    number = _number(value)
    if number is not None and number.is_integer() and value.lower() not in ("nan", "inf", "-inf"):
        return str(int(number))
    return value


def name_labels(values: Iterable[str]) -> dict[str, str]:
    """Map each (canonical) raw value to the label the model will predict."""
    raw = sorted(set(values), key=_sort_key)
    names = NAMED.get(tuple(raw))
    return dict(zip(raw, names)) if names else {v: v for v in raw}


def order_labels(labels: Iterable[str]) -> list[str]:
    """Labels in a reading order: by polarity where known, numerically, else alphabetically."""
    labels = list(dict.fromkeys(labels))
    values = polarity(labels)
    if values:
        return sorted(labels, key=lambda label: (values[label], label))
    return sorted(labels, key=_sort_key)


def polarity(labels: Iterable[str]) -> dict[str, float]:
    """Each label's place on [-1, 1], or {} when the labels have no order."""
    labels = list(labels)
    numbers = [_number(label) for label in labels]
    if labels and all(n is not None for n in numbers):
        lo, hi = min(numbers), max(numbers)  # type: ignore[type-var]
        span = (hi - lo) or 1.0  # type: ignore[operator]
        return {label: round(-1.0 + 2.0 * (n - lo) / span, 6) for label, n in zip(labels, numbers)}  # type: ignore[operator]
    lowered = [label.lower() for label in labels]
    if not labels or not all(label in WORDS for label in lowered):
        return {}
    # With "very negative" present, plain "negative" is half-way (SST-5 style scales).
    graded = any(label.startswith("very") for label in lowered)
    return {label: WORDS[low] / (1.0 if (low.startswith("very") or not graded or WORDS[low] == 0) else 2.0)
            for label, low in zip(labels, lowered)}


def score(probabilities: Mapping[str, float], values: Mapping[str, float]) -> float | None:
    """Expected polarity under ``probabilities``, in [-1, 1]; None when labels have no polarity."""
    if not values:
        return None
    return sum(p * values.get(label, 0.0) for label, p in probabilities.items())


def _sort_key(value: str) -> tuple[int, float, str]:
    number = _number(value)
    return (0, number, value) if number is not None else (1, 0.0, value.lower())
