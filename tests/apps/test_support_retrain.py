"""`appkit support retrain` on a nano model: what it learns from, the gate, promotion, rollback, refusals."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from appkit.config import load_settings
from appkit.errors import NotEnoughDataError
from appkit.train.pipeline import ChatTrainingOptions

NEW_QUESTIONS = ["how do I cancel my magazine subscription", "cancel the magazine subscription please",
                 "I want to stop my magazine subscription", "end my magazine membership",
                 "how can I unsubscribe from the magazine", "stop the magazine plan"]
ANSWER = "Open Settings, then Subscriptions, and press Cancel: the magazine stops at the end of the month."
FAST = dict(max_steps=25, learning_rate=4e-3, batch_size=4, progress=False, device="cpu")


@pytest.fixture
def home(tmp_path, support_model_dir, toy_history, monkeypatch) -> Path:
    """A home whose active support model is the session's nano model, answering in select mode."""
    from appkit.store import open_store

    home = tmp_path / "home"
    home.mkdir()
    (home / "appkit.toml").write_text('[support]\nreply_mode = "select"\n')
    monkeypatch.setenv("APPKIT_HOME", str(home))
    monkeypatch.setenv("APPKIT_DEVICE", "cpu")
    monkeypatch.setenv("APPKIT_SAFETY_BACKEND", "lexicon")
    monkeypatch.delenv("APPKIT_DATABASE_URL", raising=False)
    with open_store(load_settings()) as store:
        store.register_model("toy", "support", str(support_model_dir), status="active",
                             data={"history": str(toy_history)})
    return home


def customers_ask_what_the_model_never_saw(n: int = 28, seed: int = 0) -> None:
    """``n`` conversations of a new intent: the bot answers wrong or hands over, a person answers."""
    from appkit.apps import load_app

    rng = random.Random(seed)
    bot = load_app("support", settings=load_settings(), policy=None)
    try:
        for i in range(n):
            conv = bot.start()
            turn = bot.stream(conv.id, f"{rng.choice(NEW_QUESTIONS)}{rng.choice(['', '?', ' now', ' asap'])} ({i})")
            "".join(turn)
            if not turn.escalated:
                bot.rate(turn.reply_message.id, -1)
                "".join(bot.stream(conv.id, "can I talk to a human"))
            bot.store.agent_reply(conv.id, ANSWER, author="agent:ann")
    finally:
        bot.close()


def test_learned_conversations_pair_each_answer_with_its_question(home):
    from appkit.store import open_store
    from apps.support.learned import learned_conversations

    with open_store(load_settings()) as store:
        a = store.create_conversation("support")
        store.append_message(a.id, "user", "how do I cancel my magazine?")
        wrong = store.append_message(a.id, "assistant", "Your order ships today.", model_name="toy")
        store.add_feedback(wrong.id, -1)
        store.append_message(a.id, "user", "That does not answer my question. Can I talk to a human agent please?")
        store.append_message(a.id, "assistant", "A colleague will answer.", template_name="support/handoff.j2")
        store.agent_reply(a.id, ANSWER)
        store.agent_reply(a.id, "Anything else?")  # a second message of the same answer

        b = store.create_conversation("support")
        store.append_message(b.id, "user", "where is my order")
        good = store.append_message(b.id, "assistant", "It ships today.", model_name="toy")
        store.add_feedback(good.id, 1)
        store.append_message(b.id, "user", "and my invoice?")
        store.append_message(b.id, "assistant", "Unrated reply.", model_name="toy")  # not learned: unverified

        d = store.create_conversation("support")  # the question and the request for a person at once
        store.append_message(d.id, "user", "My parcel 123 never came. Let me talk to a person.")
        store.append_message(d.id, "assistant", "A colleague will answer.", template_name="support/handoff.j2")
        store.agent_reply(d.id, "I have sent a new parcel.")

        c = store.create_conversation("support")
        store.append_message(c.id, "user", "hello")
        store.append_message(c.id, "assistant", "Hi!", model_name="toy")  # nothing to learn

        learned = learned_conversations(store)
    assert learned.looked_at == 4 and (learned.agent_answers, learned.good_replies) == (2, 1)
    by_id = {conv.id: [(t.role, t.text) for t in conv.turns] for conv in learned.conversations}
    assert by_id == {f"stored-{a.id}": [("user", "how do I cancel my magazine?"),
                                        ("assistant", f"{ANSWER}\nAnything else?")],
                     f"stored-{b.id}": [("user", "where is my order"), ("assistant", "It ships today.")],
                     f"stored-{d.id}": [("user", "My parcel 123 never came."), ("assistant", "I have sent a new parcel.")]}
    # The gate measures the bot against what people answered, never against the bot's own words.
    from apps.support.evaluate import held_out_exchanges

    exchanges = held_out_exchanges(learned.conversations, by_person=True)
    assert [(e.message, e.reference) for e in exchanges] == [("how do I cancel my magazine?", f"{ANSWER}\nAnything else?"),
                                                             ("My parcel 123 never came.", "I have sent a new parcel.")]


def test_too_little_new_data_says_so_and_changes_nothing(home):
    from appkit.store import open_store
    from apps.support.retrain import RetrainOptions, retrain

    customers_ask_what_the_model_never_saw(6)
    settings = load_settings()
    with pytest.raises(NotEnoughDataError, match=r"only 6 new stored conversation\(s\).*at least 20.*Nothing was"):
        retrain(settings, RetrainOptions(min_new=20), ChatTrainingOptions(**FAST), log=lambda _: None)
    with open_store(settings) as store:
        assert [m.name for m in store.list_models()] == ["toy"] and store.list_runs() == []
    assert not (home / "models").exists()


def test_retrain_learns_the_agents_answers_promotes_and_rolls_back(home, toy_history):
    from appkit.apps import load_app
    from appkit.store import open_store
    from apps.support.retrain import RESULT_FILE, RetrainOptions, retrain

    customers_ask_what_the_model_never_saw()
    settings = load_settings()
    result = retrain(settings, RetrainOptions(min_new=20, limit=40, audit_messages=24, name="toy-2"),
                     ChatTrainingOptions(**FAST), log=lambda _: None)

    assert result.passed and result.promoted, [(g.name, g.active, g.candidate) for g in result.gates]
    new_active, new_candidate = result.scores["toy"]["new"], result.scores["toy-2"]["new"]
    assert new_candidate["rouge_l"] > 0.8 > new_active["rouge_l"]  # it says what the person said
    assert {g.name.split(":")[0] for g in result.gates} >= {"held-out history", "new conversations", "audit"}
    with open_store(settings) as store:
        record = store.active_model("support")
        assert (record.name, record.previous, record.status) == ("toy-2", "toy", "active")
        assert record.data["retrain_of"] == "toy" and record.data["history"] == str(toy_history)
    split = json.loads((Path(record.path) / "split.json").read_text())
    active_split = json.loads((Path(store.get_model("toy").path) / "split.json").read_text())
    assert split["validation"] == active_split["validation"]  # the same held-out history conversations
    assert len(split["validation_stored"]) == result.data["new_held_out"] >= 3
    assert json.loads((Path(record.path) / RESULT_FILE).read_text())["promoted"] is True

    bot = load_app("support", settings=settings, policy=None)
    try:
        assert bot.reply("how do I cancel my magazine subscription?").text == ANSWER
    finally:
        bot.close()

    from appkit.cli import main

    assert main(["models", "rollback", "--app", "support"]) == 0
    with open_store(settings) as store:
        assert store.active_model("support").name == "toy"
        assert store.get_model("toy-2").status == "archived"


def test_a_worse_candidate_is_refused_and_the_active_model_stays(home, capsys):
    from appkit.cli import main
    from appkit.data import Conversation, Turn
    from appkit.store import open_store
    from apps.support.retrain import RetrainOptions, gather
    from apps.support.train import SPLIT_FILE, train_split

    customers_ask_what_the_model_never_saw()
    settings = load_settings()
    with open_store(settings) as store:
        data = gather(store, store.active_model("support"), RetrainOptions(), settings, lambda _: None)
    replies = [c.turns[-1].text for c in data.train]
    random.Random(0).shuffle(replies)  # every question paired with some other question's answer
    shuffled = [Conversation(c.id, [c.turns[0], Turn("assistant", r)], c.source) for c, r in zip(data.train, replies)]
    trained = train_split(shuffled, [*data.base_val, *data.new_val], data.curation, name="toy-bad",
                          options=ChatTrainingOptions(**FAST), settings=settings, log=lambda _: None)
    (trained.path / SPLIT_FILE).write_text(json.dumps({"train": [c.id for c in shuffled],
                                                       "validation": [c.id for c in data.base_val]}))
    with open_store(settings) as store:
        store.register_model("toy-bad", "support", str(trained.path), status="candidate")

    code = main(["support", "retrain", "--candidate", "toy-bad", "--limit", "40"])
    out, err = capsys.readouterr()
    assert code == 3, err
    assert "toy-bad was not promoted: it is worse than toy on: held-out history: reply intent accuracy" in err
    assert "FAIL" in out and "Traceback" not in err
    with open_store(settings) as store:
        assert store.active_model("support").name == "toy"
        assert store.get_model("toy-bad").status == "candidate"


def test_retrain_without_an_active_model_or_with_a_missing_history_is_clear(tmp_path, monkeypatch, capsys):
    from appkit.cli import main

    monkeypatch.setenv("APPKIT_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("APPKIT_DATABASE_URL", raising=False)
    assert main(["support", "retrain"]) == 1
    assert "no active support model to improve on" in capsys.readouterr().err
    assert main(["models", "rollback"]) == 1
    assert "no active model" in capsys.readouterr().err
