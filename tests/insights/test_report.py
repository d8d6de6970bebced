"""build_report on a generated store, on SQLite and PostgreSQL: every number checked against the scenario."""

from __future__ import annotations

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError, NotEnoughDataError
from appkit.insights.period import parse_period
from appkit.insights.reference import Reference
from appkit.insights.report import build_report
from tests.insights.history import KNOWN, NEW, conversation, days_ago, reference_texts


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path / "home")


def scenario(store) -> dict[str, int]:
    c1 = conversation(store, ["where is my order", "thanks, and the invoice?"], latency=100, rating=1,
                      moods=[0.5, 0.8], when=days_ago(2))
    c2 = conversation(store, ["I want a refund"], latency=300, rating=-1, moods=[0.0])
    c3 = conversation(store, ["reset my password", "this is useless"], latency=200, moods=[0.4, -0.8],
                      handoff="sentiment_drop", agent="Sorry about that: here is a reset link.")
    c4 = conversation(store, ["has my order shipped yet"], latency=400, close=False)
    c5 = conversation(store, ["can I get my money back"], model="m2", latency=1000, rating=1)
    c6 = conversation(store, ["agent please"], handoff="asked_for_human")
    conversation(store, ["an old question"], when=days_ago(10))  # before the period
    store.record_moderation("support", "input", "detoxify:own", "flag", {"toxicity": 0.6, "insult": 0.8},
                            conversation_id=c3)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "c6": c6}


def test_the_report_counts_what_happened_in_the_period(store, settings):
    ids = scenario(store)
    report = build_report("support", parse_period("7d"), settings=settings, store=store, reference=None)
    u = report.usage
    assert (u.conversations, u.customer_messages, u.bot_replies, u.agent_replies) == (6, 8, 6, 1)
    t = u.total
    assert (t.conversations, t.resolved, t.handed_over, t.open) == (6, 3, 2, 1)
    assert (t.rated, t.positive) == (3, 2)
    assert u.handoff_reasons == {"sentiment_drop": 1, "asked_for_human": 1}
    assert u.safety == [("input", "flag", "insult", 1)]

    by_model = {m.model: m for m in u.models}
    assert list(by_model) == ["m1", "m2", "(no reply)"]
    m1, m2 = by_model["m1"], by_model["m2"]
    assert (m1.conversations, m1.resolved, m1.handed_over, m1.open, m1.replies) == (4, 2, 1, 1, 5)
    assert (m1.rated, m1.positive) == (2, 1)
    assert m1.latency_p50_ms == 200 and m1.latency_p95_ms == pytest.approx(380)
    assert (m2.conversations, m2.resolved, m2.replies, m2.positive_share, m2.latency_p50_ms) == (1, 1, 1, 1.0, 1000)
    assert by_model["(no reply)"].handed_over == 1

    mood = t.mood
    assert (mood.conversations, mood.compared, mood.improved, mood.worsened) == (3, 2, 1, 1)
    assert mood.start == pytest.approx(0.3) and mood.end == pytest.approx(0.0)

    days = {d.day: d for d in u.days}
    assert days[days_ago(2).date()].conversations == 1 and days[days_ago(2).date()].customer_messages == 2
    assert sum(d.conversations for d in u.days) == 6

    turns = {(turn.conversation_id, turn.text): turn for turn in u.turns}
    assert turns[(ids["c3"], "this is useless")].handed_over
    assert not turns[(ids["c3"], "reset my password")].handed_over
    assert turns[(ids["c2"], "I want a refund")].rating == -1
    assert report.drift is None and report.topics is not None  # no reference: topics by words only


def test_topics_name_known_intents_and_find_the_new_one_as_a_gap(store, settings):
    texts, labels, held = reference_texts()
    for intent, wordings in KNOWN.items():
        for w in wordings:
            conversation(store, [w + " please"], rating=1)
    for w in NEW * 2:  # what the model never saw: every one handed over
        conversation(store, [w], handoff="low_confidence")
    reference = Reference("m1", texts, labels, held, "test history")
    report = build_report("support", parse_period("1d"), settings=settings, store=store, reference=reference)

    topics = {t.name: t for t in report.topics.topics}
    assert {"order", "refund", "password"} <= set(topics)
    assert all(topics[i].kind == "intent" and topics[i].messages == 6 for i in KNOWN)
    new = [t for t in report.topics.topics if t.kind == "new"]
    assert len(new) == 1 and "subscription" in new[0].name and new[0].messages == 12
    assert new[0].handoff_rate == 1.0 and new[0].reference_share == 0.0
    assert [g.name for g in report.topics.gaps] == [new[0].name]
    assert all("subscription" in example for example in new[0].examples)

    drift = report.drift
    assert drift.warning and drift.score == pytest.approx(12 / 30)
    assert drift.unseen_words > 0.2 > (drift.reference_unseen_words or 0)
    assert drift.topic_shift > 0.3


def test_a_period_like_the_training_data_raises_no_drift_warning(store, settings):
    texts, labels, held = reference_texts()
    for intent, wordings in KNOWN.items():
        for w in wordings:
            conversation(store, [w + " thanks"], rating=1)
    report = build_report("support", parse_period("1d"), settings=settings, store=store,
                          reference=Reference("m1", texts, labels, held))
    assert not report.drift.warning and report.drift.score < 0.15
    assert report.topics.gaps == []  # nothing went wrong anywhere
    assert report.drift.topic_shift < 0.1


def test_an_empty_store_and_a_quiet_period_say_so(store, settings):
    with pytest.raises(NotEnoughDataError, match="holds no support conversations yet"):
        build_report("support", parse_period("7d"), settings=settings, store=store, reference=None)
    conversation(store, ["where is my order"], when=days_ago(20))
    with pytest.raises(NotEnoughDataError, match=r"no support conversation started between .*holds 1 from .*--since 21d"):
        build_report("support", parse_period("7d"), settings=settings, store=store, reference=None)


@pytest.mark.parametrize("since", ["7x", "yesterday", "0d", "-3d", "2026-13-01"])
def test_a_bad_since_names_the_value_and_the_forms_expected(since):
    with pytest.raises(ConfigError, match="--since"):
        parse_period(since)


def test_since_after_until_is_an_empty_period():
    with pytest.raises(ConfigError, match="the period is empty"):
        parse_period("1d", "3d")
