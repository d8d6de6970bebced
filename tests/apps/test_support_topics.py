"""The router's topic after each customer message: what the support model reads before it writes."""

from __future__ import annotations

from appkit.data import Conversation, Turn
from apps.support.bot import SupportBot
from apps.support.cases import Case, CaseIndex, cases_from
from apps.support.prompting import with_topics, with_training_topics
from tests.conftest import INTENTS

REFUND = "Your refund is on its way to your card."
CANCEL = "I have cancelled the order for you."


def routed_index(cases: list[Case]) -> CaseIndex:
    index = CaseIndex(cases)
    index.group_replies()
    index.fit_router()
    return index


def two_intents() -> list[Case]:
    cases = [Case(f"please refund my money {i}", REFUND, f"r{i}", intent="get_refund") for i in range(8)]
    return cases + [Case(f"cancel the order now {i}", CANCEL, f"c{i}", intent="cancel_order") for i in range(8)]


def test_every_answered_customer_message_and_the_last_one_carry_the_router_s_topic():
    index = routed_index(two_intents())
    messages = [{"role": "system", "content": "You are the support assistant."},
                {"role": "user", "content": "hello"},  # answered by the next message
                {"role": "user", "content": "I want my money refunded"},
                {"role": "assistant", "content": REFUND},
                {"role": "user", "content": "actually just cancel that order"}]
    shown = with_topics(messages, index.topic)
    assert shown[0] == messages[0] and shown[1] == messages[1]  # the system prompt; a message not answered
    assert shown[2]["content"] == "I want my money refunded\n(topic: get refund)"
    assert shown[3] == messages[3]
    assert shown[4]["content"] == "actually just cancel that order\n(topic: cancel order)"
    assert messages[4]["content"] == "actually just cancel that order"  # the caller's messages are untouched


def test_groups_without_an_intent_are_named_by_number():
    index = routed_index([Case(c.customer, c.agent, c.conversation_id) for c in two_intents()])
    assert sorted(index.group_names.values()) == ["group 0", "group 1"]
    assert index.topic("refund my money please") == index.group_names[index.cases[0].group]


def test_training_shows_the_topic_a_router_that_never_saw_the_message_gives():
    # one refund wording that only a router trained on it could get right: routed without it,
    # it reads as a cancellation, and training must show the model that mistake
    cases = [*two_intents(), Case("cancel the order now and refund", REFUND, "odd", intent="get_refund")]
    conversations = [Conversation(c.conversation_id, [Turn("user", c.customer), Turn("assistant", c.agent)],
                                  meta={"intent": c.intent}) for c in cases]
    index = routed_index(cases_from(conversations))
    assert [c.customer for c in index.cases] == [c.customer for c in cases]
    held_out = index.held_out_topics(folds=4)
    assert held_out[-1] == "cancel order"
    assert held_out[:-1] == ["get refund"] * 8 + ["cancel order"] * 8
    shown = with_training_topics(conversations, index, held_out)
    assert shown[-1].turns[0].text == "cancel the order now and refund\n(topic: cancel order)"
    assert shown[-1].turns[1].text == REFUND  # replies are learned as they were
    assert shown[0].turns[0].text == "please refund my money 0\n(topic: get refund)"


def test_a_trained_support_model_reads_the_topic_of_the_customer_s_message(support_model_dir, appkit_home):
    from appkit.config import load_settings

    bot = SupportBot.open(model=str(support_model_dir), settings=load_settings(), policy=None)
    try:
        assert bot.topics
        prompt, _ = bot.prompt([{"role": "user", "content": "where is my parcel"}])
        assert prompt[-1]["content"] == "where is my parcel\n(topic: order)"
        reply = bot.reply("my parcel still has not come, where is it", mode="generate")
        assert "topic" not in reply.text
    finally:
        bot.close()
    assert set(INTENTS) <= set(bot.index.group_names.values())


ASK_CANCEL = "Which order would you like to cancel?"
ASK_COMPLAINT = "I'm sorry to hear that. Could you tell me the order number and what went wrong?"


def order_number_replies() -> list[Case]:
    """Customers give their order number after two kinds of question; cancellations are the more common."""
    cases = []
    for i in range(12):
        cases += [Case(f"cancel my order {i}", ASK_CANCEL, f"c{i}", intent="cancel_order"),
                  Case("it's order [ORDER_ID]", "I've cancelled order [ORDER_ID].", f"c{i}", ASK_CANCEL, "cancel_order")]
    for i in range(4):
        cases += [Case(f"the lamp {i} arrived broken", ASK_COMPLAINT, f"k{i}", intent="complaint"),
                  Case(f"[ORDER_ID], the lamp {i} is cracked", "I've arranged a replacement for order [ORDER_ID].",
                       f"k{i}", ASK_COMPLAINT, "complaint")]
    return cases


def test_the_agent_s_question_before_a_bare_order_number_decides_its_topic():
    index = routed_index(order_number_replies())
    assert index.topic("it's order [ORDER_ID], the base is broken", ASK_COMPLAINT) == "complaint"
    assert index.topic("it's order [ORDER_ID], the base is broken", ASK_CANCEL) == "cancel order"


def test_a_router_saved_before_its_context_scale_and_gate_were_recorded_routes_as_it_did(tmp_path, monkeypatch):
    import numpy as np

    import apps.support.cases as cases_module

    monkeypatch.setattr(cases_module, "ROUTER_CONTEXT", cases_module.OLD_ROUTER_CONTEXT)  # as earlier versions fitted it
    monkeypatch.setattr(cases_module, "OPENING_GATE", False)
    index = routed_index(order_number_replies())
    before = index.route("it's order [ORDER_ID], the base is broken", ASK_COMPLAINT)
    index.save(tmp_path)
    with np.load(tmp_path / cases_module.ROUTER_FILE) as data:  # the file as an earlier version wrote it
        old = {k: data[k] for k in ("coef", "intercept", "classes")}
    np.savez(tmp_path / cases_module.ROUTER_FILE, **old)
    monkeypatch.undo()

    loaded = CaseIndex.load(tmp_path)
    assert loaded is not None
    assert loaded.route("it's order [ORDER_ID], the base is broken", ASK_COMPLAINT) == before


def test_a_message_that_opens_a_subject_is_routed_by_its_words_whatever_the_agent_asked(monkeypatch, tmp_path):
    import apps.support.cases as cases_module

    monkeypatch.setattr(cases_module, "SWITCHED_COPIES", 0)  # the gate alone
    index = routed_index(order_number_replies() + [Case(f"I want a refund for the lamp {i}", REFUND, f"r{i}",
                                                        intent="get_refund") for i in range(6)])
    assert index._opening(index._query("I want a refund, this is ridiculous", "")[0])[0] > 0.5
    assert index._opening(index._query("it's order [ORDER_ID]", "")[0])[0] < 0.5
    assert index.topic("I want a refund, this is ridiculous", ASK_CANCEL) == "get refund"
    assert index.topic("it's order [ORDER_ID], the base is broken", ASK_COMPLAINT) == "complaint"
    assert index.topic("it's order [ORDER_ID], the base is broken", ASK_CANCEL) == "cancel order"
    index.save(tmp_path)
    loaded = CaseIndex.load(tmp_path)
    assert loaded is not None
    assert loaded.route("I want a refund, this is ridiculous", ASK_CANCEL) == index.route(
        "I want a refund, this is ridiculous", ASK_CANCEL)
    monkeypatch.setattr(cases_module, "OPENING_GATE", False)
    assert routed_index(index.cases).topic("I want a refund, this is ridiculous", ASK_CANCEL) == "cancel order"


STATUS = "Order [ORDER_ID] shipped on Tuesday and is on its way."
WELCOME = "You're welcome! Have a great day."


def order_status_conversations() -> list[Case]:
    """Twelve order-status conversations, each closing with thanks."""
    cases = []
    for i in range(12):
        cases += [Case(f"where is my order {i}", "What is your order number?", f"s{i}", intent="order_status"),
                  Case("it's order [ORDER_ID]", STATUS, f"s{i}", "What is your order number?", "order_status"),
                  Case("thanks!", WELCOME, f"s{i}", STATUS, "order_status")]
    return cases


def test_a_customer_who_changes_the_subject_is_routed_by_what_they_say():
    cases = order_status_conversations()
    cases += [Case(f"I want a refund for item {i}", REFUND, f"r{i}", intent="get_refund") for i in range(6)]
    index = routed_index(cases)
    assert index.topic("I want a refund, this is ridiculous", STATUS) == "get refund"
    assert index.topic("thanks a lot", STATUS) == "order status"


def closing_in_every_intent() -> list[Case]:
    """Every conversation closes with the same thanks and reply, labelled with its intent, as
    histories label whole conversations; the order status is the commonest."""
    cases = order_status_conversations()
    for i in range(4):
        cases += [Case(f"I want a refund for the grinder {i}", REFUND, f"r{i}", intent="get_refund"),
                  Case("great, thank you", WELCOME, f"r{i}", REFUND, "get_refund"),
                  Case(f"cancel the order now {i}", CANCEL, f"c{i}", intent="cancel_order"),
                  Case("thanks!", WELCOME, f"c{i}", CANCEL, "cancel_order"),
                  Case("thanks, bye", WELCOME, f"t{i}", intent="thanks")]
    return cases


def test_a_closing_many_intents_share_is_only_chosen_for_a_closing():
    from apps.support.grounding import Grounder

    index = routed_index(closing_in_every_intent())
    assert len({c.group for c in index.cases if c.agent == WELCOME}) == 1
    assert index.group_names[next(c.group for c in index.cases if c.agent == WELCOME)] == "thanks"
    grounder = Grounder(index)
    status = "Order 48213 shipped on Tuesday and is on its way."

    def reply(message: str) -> str:
        turns = [{"role": "user", "content": "where is my order"},
                 {"role": "assistant", "content": "What is your order number?"},
                 {"role": "user", "content": "it's 48213"},
                 {"role": "assistant", "content": status}, {"role": "user", "content": message}]
        return grounder.rank(grounder.gather(turns), "retrieval")[0].text

    assert reply("I want a refund, this is ridiculous") == REFUND
    assert reply("ok thanks a lot") == WELCOME


def test_replies_shared_by_intents_none_of_which_is_mostly_them_form_a_group_of_their_own():
    cases = [c for c in closing_in_every_intent() if c.intent != "thanks"]
    cases.append(Case("do you sell gift cards", "Yes: gift cards are under Shop > Gift cards.", "u1"))  # no intent
    index = routed_index(cases)
    welcome = {c.group for c in index.cases if c.agent == WELCOME}
    assert len(welcome) == 1
    (group,) = welcome
    assert index.group_names[group] == f"group {group}"
    named = {index.group_names[c.group] for c in index.cases if c.agent != WELCOME and c.intent}
    assert named == {"order status", "get refund", "cancel order"}
    unnamed = next(c.group for c in index.cases if not c.intent)
    assert unnamed not in welcome | {c.group for c in index.cases if c.intent}
