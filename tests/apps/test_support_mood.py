"""The customer's mood: a direction-aware score from any sentiment label set, and what counts as a drop."""

from __future__ import annotations

import pytest

from apps.support.mood import CustomerMood, mood_score


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [
        ({"positive": 0.9, "negative": 0.1}, 0.8),
        ({"negative": 0.7, "neutral": 0.2, "positive": 0.1}, -0.6),
        ({"0": 0.25, "1": 0.75}, 0.5),  # SST-2 style: 1 is positive
        ({"1": 1.0, "2": 0.0, "3": 0.0, "4": 0.0, "5": 0.0}, -1.0),  # one star
        ({"1": 0.0, "2": 0.0, "3": 1.0, "4": 0.0, "5": 0.0}, 0.0),
        ({"sports": 0.6, "politics": 0.4}, None),  # no direction: never escalates
        ({}, None),
    ],
)
def test_mood_score_reads_the_direction_of_common_label_sets(probabilities, expected):
    assert mood_score(max(probabilities, key=probabilities.get) if probabilities else "", probabilities) == (
        pytest.approx(expected) if expected is not None else None)


def test_a_drop_is_a_fall_of_at_least_the_threshold_between_customer_messages():
    mood = CustomerMood(analyzer=None, drop=1.0)
    assert mood.dropped({"score": 0.6}, {"score": -0.5})
    assert not mood.dropped({"score": 0.2}, {"score": -0.5})  # unhappy, but not a sharp fall
    assert not mood.dropped(None, {"score": -1.0})  # the first message has nothing to fall from
    assert not mood.dropped({"score": None}, {"score": -1.0})
    assert not CustomerMood(analyzer=None, drop=0).dropped({"score": 1.0}, {"score": -1.0})  # 0 turns it off
