"""The support bot with a real sentiment model: the customer's mood is stored, and a sharp drop hands over."""

from __future__ import annotations

import pytest

from appkit.config import load_settings
from appkit.engine import GREEDY
from apps.support.bot import SupportBot
from apps.support.mood import CustomerMood
from tests.apps.sentiment_data import sentences, write_csv


@pytest.fixture(scope="module")
def mood_model(tmp_path_factory):
    """A tiny 3-class sentiment classifier, trained once for the module in a home of its own."""
    from apps.sentiment.train import SentimentOptions, train_sentiment

    home = tmp_path_factory.mktemp("mood-home")
    trained_in = load_settings(home=home, database_url=f"sqlite:///{home / 'appkit.db'}")
    data = write_csv(home / "labeled.csv", sentences(240, seed=0))
    options = SentimentOptions(hidden_size=64, layers=1, heads=2, max_length=32, epochs=12, learning_rate=3e-3,
                               patience=4, progress=False)
    return train_sentiment(data, name="mood", options=options, settings=trained_in, log=lambda _: None)


@pytest.fixture
def settings(appkit_home, support_model_dir, mood_model):
    """A home whose active models are the toy support bot and the tiny sentiment classifier."""
    from appkit.store import open_store

    settings = load_settings()
    with open_store(settings) as store:
        store.register_model("toy", "support", str(support_model_dir), status="active", replace=True)
        store.register_model(mood_model.name, "sentiment", str(mood_model.path), metrics=mood_model.metrics,
                             status="active")
    return settings


def test_each_customer_message_carries_its_sentiment_and_a_sharp_drop_hands_over(settings):
    bot = SupportBot.open(settings=settings, policy=None)
    try:
        assert bot.mood is not None and bot.describe()["sentiment"] == "mood"
        conv = bot.start()
        first = bot.stream(conv.id, "honestly the service was excellent", params=GREEDY)
        "".join(first)
        assert not first.escalated
        second = bot.stream(conv.id, "well , my order is terrible", params=GREEDY)
        text = "".join(second)
        assert second.escalated and second.reason == "sentiment_drop"
        assert "frustrating" in text and bot.store.get_conversation(conv.id).status == "escalated"
        moods = [m.sentiment for m in bot.store.messages(conv.id) if m.role == "user"]
        assert [m["label"] for m in moods] == ["positive", "negative"]
        assert moods[0]["score"] > 0.3 > -0.3 > moods[1]["score"] and moods[1]["model"] == "mood"
        assert abs(sum(moods[1]["probabilities"].values()) - 1) < 1e-3
    finally:
        bot.close()


def test_the_drop_threshold_is_a_setting_and_zero_turns_it_off(settings, appkit_home):
    (appkit_home / "appkit.toml").write_text("[support]\nescalate_on_sentiment_drop = 0\n")
    bot = SupportBot.open(settings=load_settings(), policy=None)
    try:
        conv = bot.start()
        "".join(bot.stream(conv.id, "the support team was wonderful", params=GREEDY))
        turn = bot.stream(conv.id, "the refund was awful", params=GREEDY)
        "".join(turn)
        assert not turn.escalated  # stored, but no handoff
        assert bot.store.messages(conv.id)[-2].sentiment["label"] == "negative"
    finally:
        bot.close()


def test_a_drop_is_a_fall_of_at_least_the_threshold_between_customer_messages():
    mood = CustomerMood(analyzer=None, drop=1.0)
    assert mood.dropped({"score": 0.6}, {"score": -0.5})
    assert not mood.dropped({"score": 0.2}, {"score": -0.5})  # unhappy, but not a sharp fall
    assert not mood.dropped(None, {"score": -1.0})  # the first message has nothing to fall from
    assert not mood.dropped({"score": None}, {"score": -1.0})  # labels without a direction never drop


def test_without_a_sentiment_model_the_bot_scores_nothing(appkit_home, support_model_dir):
    bot = SupportBot.open(model=str(support_model_dir), settings=load_settings(), policy=None)
    try:
        assert bot.mood is None and bot.describe()["sentiment"] == "off"
        conv = bot.start()
        "".join(bot.stream(conv.id, "where is my order?", params=GREEDY))
        assert bot.store.messages(conv.id)[0].sentiment is None
    finally:
        bot.close()


def test_a_broken_sentiment_model_is_reported_not_silently_ignored(appkit_home, support_model_dir):
    # A damaged sentiment model used to turn escalation on a mood drop off without a word.
    import json

    from appkit.errors import ModelError
    from appkit.store import open_store

    damaged = appkit_home / "models" / "mood"
    damaged.mkdir(parents=True)
    (damaged / "appkit.json").write_text(json.dumps({"app": "sentiment", "wrapping": {"max_length": 32}}))
    (damaged / "config.json").write_text('{"model_type": "modernbert", ')  # cut short, as by a full disk
    settings = load_settings()
    with open_store(settings) as store:
        store.register_model("mood", "sentiment", str(damaged), status="active")
    with pytest.raises(ModelError, match=r"active sentiment model 'mood' cannot be loaded.*sentiment = false"):
        SupportBot.open(model=str(support_model_dir), settings=settings, policy=None)

    (appkit_home / "appkit.toml").write_text("[support]\nsentiment = false\n")
    bot = SupportBot.open(model=str(support_model_dir), settings=load_settings(), policy=None)
    try:
        assert bot.mood is None and bot.describe()["sentiment"] == "off"  # turned off on purpose: it runs without
    finally:
        bot.close()
