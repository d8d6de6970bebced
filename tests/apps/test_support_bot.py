"""The support bot on a real tiny model with a real SQLite store."""

from __future__ import annotations

import pytest

from appkit.engine import GREEDY
from appkit.errors import GenerationError, NotFoundError, StorageError




def test_a_streamed_reply_is_stored_with_its_provenance(bot):
    conv = bot.start(user="u1")
    turn = bot.stream(conv.id, "where is my order?", params=GREEDY, mode="generate")
    text = "".join(turn)
    assert "order" in text.lower()
    messages = bot.store.messages(conv.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    reply = messages[1]
    assert reply.content == text.strip() and reply.status == "ok"
    assert reply.model_name == "toy"
    assert reply.template_name == "support/system.j2" and len(reply.template_version) == 12
    assert reply.latency_ms >= 0 and reply.completion_tokens > 0 and reply.prompt_tokens > 0
    assert bot.store.get_conversation(conv.id).title == "where is my order?"


def test_a_reply_with_no_settings_given_is_the_model_s_most_likely_one(bot):
    from dataclasses import replace

    from apps.support.replies import REPLY_TOKENS

    message = "my parcel has still not come"
    first = bot.reply(message, mode="generate")
    assert first.text and bot.reply(message, mode="generate").text == first.text
    assert bot.reply(message, params=replace(GREEDY, max_new_tokens=REPLY_TOKENS), mode="generate").text == first.text
    sampled = {bot.reply(message, params=replace(GREEDY, temperature=1.5, seed=s), mode="generate").text
               for s in range(4)}
    assert sampled != {first.text}  # a caller's own settings still apply


def test_the_reply_is_conditioned_on_the_conversation_so_far(bot):
    history = [{"role": "user", "content": "I forgot my password"}, {"role": "assistant", "content": "Use the link."}]
    messages, system = bot.prompt([*history, {"role": "user", "content": "thanks"}])
    assert messages[0]["role"] == "system"
    # each customer message with the router's topic after it (tests/apps/test_support_topics.py)
    assert messages[1] == {"role": "user", "content": "I forgot my password\n(topic: password)"}
    assert messages[2] == history[1]
    assert messages[3]["content"].startswith("thanks\n(topic: ")


def test_long_conversations_drop_oldest_turns_but_keep_the_system_prompt(bot):
    history = []
    for i in range(40):
        history += [{"role": "user", "content": f"question {i} " * 5}, {"role": "assistant", "content": f"answer {i} " * 5}]
    history.append({"role": "user", "content": "latest question"})
    messages, _ = bot.prompt(history)
    assert messages[0]["role"] == "system"
    assert messages[-1]["content"].startswith("latest question\n(topic: ")
    assert len(messages) < len(history)
    assert len(bot.engine.prompt_ids(messages)) <= bot.engine.context_length - 128


def test_a_long_message_is_shown_with_fewer_cases_rather_than_refused(bot):
    from apps.support.prompting import system_message, with_topics

    budget = bot.engine.context_length - 128

    def size(message: str, cases: int) -> int:
        turn = with_topics([{"role": "user", "content": message}], bot.index.topic)
        system = system_message(bot.prompts, bot.company, turn, bot.index, cases_per_prompt=cases)
        return len(bot.engine.prompt_ids([{"role": "system", "content": system.text}, *turn]))

    message = "where is my order"
    while size(message + " please", 0) <= budget:
        message += " please"
    assert size(message, 2) > budget  # with both retrieved cases it would not fit
    messages, _ = bot.prompt([{"role": "user", "content": message}])
    assert messages[-1]["content"].startswith(message + "\n(topic: ")
    assert len(bot.engine.prompt_ids(messages)) <= budget
    bot.engine.check_fits(messages)


def test_asking_for_a_human_escalates_with_a_handoff_and_an_event(bot):
    conv = bot.start()
    turn = bot.stream(conv.id, "I want to talk to a real person")
    text = "".join(turn)
    assert turn.escalated and turn.reason == "asked_for_human"
    assert "support team" in text
    assert bot.store.get_conversation(conv.id).status == "escalated"
    events = bot.store.moderation_events(conversation_id=conv.id)
    assert [e.action for e in events] == ["escalate"] and events[0].backend == "handoff:asked_for_human"
    assert bot.store.messages(conv.id)[-1].template_name == "support/handoff.j2"
    # Once a human owns the conversation the bot acknowledges instead of improvising.
    later = "".join(bot.stream(conv.id, "hello?"))
    assert "added this to your conversation" in later


def test_low_confidence_hands_over(bot):
    bot.min_confidence = 0.0  # no generated reply is that sure: every one hands over
    conv = bot.start()
    turn = bot.stream(conv.id, "where is my order?", params=GREEDY, mode="generate")
    "".join(turn)
    assert turn.escalated and turn.reason == "low_confidence"
    roles = [(m.role, m.template_name) for m in bot.store.messages(conv.id)]
    assert roles == [("user", None), ("assistant", "support/system.j2"), ("assistant", "support/handoff.j2")]


def test_stopping_keeps_the_partial_reply_marked_stopped(bot):
    conv = bot.start()
    turn = bot.stream(conv.id, "where is my order?")
    for _ in turn:
        turn.cancel()
    last = bot.store.messages(conv.id)[-1]
    assert last.role == "assistant" and last.status == "stopped"


def test_rating_is_stored_and_feeds_the_next_training(bot):
    from apps.support.train import conversations_from_feedback

    good = bot.start()
    "".join(bot.stream(good.id, "I want a refund", params=GREEDY))
    bot.rate(bot.last_reply(good.id).id, +1, "spot on")
    bad = bot.start()
    "".join(bot.stream(bad.id, "reset my password", params=GREEDY))
    bot.rate(bot.last_reply(bad.id).id, +1)
    "".join(bot.stream(bad.id, "where is my order", params=GREEDY))
    bot.rate(bot.last_reply(bad.id).id, -1, "wrong")
    unrated = bot.start()
    "".join(bot.stream(unrated.id, "where is my order", params=GREEDY))

    assert [f.comment for f in bot.store.feedback_for(good.id)] == ["spot on"]
    convs = {c.id: c for c in conversations_from_feedback(bot.store)}
    assert set(convs) == {f"stored-{good.id}", f"stored-{bad.id}"}
    kept = convs[f"stored-{bad.id}"].turns
    assert [t.role for t in kept] == ["user", "assistant", "user"]  # cut before the reply rated bad


def test_bad_input_is_refused_before_anything_is_written(bot):
    conv = bot.start()
    with pytest.raises(GenerationError, match="empty"):
        bot.stream(conv.id, "   ")
    with pytest.raises(GenerationError, match="context"):
        list(bot.stream(conv.id, "order " * 3000))
    with pytest.raises(NotFoundError, match="12345"):
        list(bot.stream(12345, "hello"))
    bot.store.set_status(conv.id, "closed")
    with pytest.raises(StorageError, match="closed"):
        list(bot.stream(conv.id, "where is my order"))
    assert bot.store.messages(conv.id) == []


def test_stateless_reply_stores_nothing(bot):
    reply = bot.reply("where is my order?", params=GREEDY)
    assert "order" in reply.text.lower() and reply.confidence is not None and not reply.escalated
    assert bot.store.list_conversations(app="support") == []


def test_the_safety_policy_checks_input_and_output_and_records_each_decision(bot):
    from appkit.safety import load_policy

    bot.policy = load_policy("support", bot.settings, backend="lexicon")
    conv = bot.start()
    "".join(bot.stream(conv.id, "where is my damn order, you idiots?", params=GREEDY))
    user, reply = bot.store.messages(conv.id)[:2]
    assert user.moderation["action"] in ("flag", "escalate") and user.moderation["backend"].startswith("lexicon")
    assert reply.moderation is not None and reply.moderation["direction"] == "output"
    events = bot.store.moderation_events(conversation_id=conv.id)
    assert {e.direction for e in events} >= {"input"}
    assert len(events) >= 2  # the input decision and the reply's


def test_a_blocked_message_or_reply_is_stored_as_blocked(bot):
    from appkit.safety import load_policy
    from apps.support.cases import Case, CaseIndex
    from apps.support.grounding import Grounder

    bot.policy = load_policy("support", bot.settings, backend="lexicon")
    index = CaseIndex([Case("where is my order", "Calm down, you idiot. It ships today.", "c1", group=0)])
    bot.grounder = bot.replier.grounder = Grounder(index)
    conv = bot.start()
    text = "".join(bot.stream(conv.id, "where is my order?", mode="select"))
    reply = bot.store.messages(conv.id)[-1]
    assert reply.status == "blocked" and "idiot" not in text and "idiot" not in reply.content
    assert reply.moderation["action"] == "block"
    stateless = bot.reply("where is my order?", mode="select")
    assert stateless.blocked and "idiot" not in stateless.text
