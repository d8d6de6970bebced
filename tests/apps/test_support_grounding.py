"""Grounded replies on a real nano support model: candidates, the model's judgement, reply modes."""

from __future__ import annotations

import pytest

from appkit.config import load_settings
from appkit.engine import GREEDY
from appkit.errors import ConfigError
from apps.support.bot import SupportBot
from apps.support.cases import Case, CaseIndex
from apps.support.grounding import Candidate, Grounder, Weights, load_weights
from apps.support.placeholders import RAW
from tests.conftest import INTENTS




def test_training_saves_a_case_index_with_groups_priors_and_fitted_weights(support_model_dir):
    index = CaseIndex.load(support_model_dir)
    assert index is not None and index.cases
    replies = {c.agent for c in index.cases}
    assert replies <= {answer for _, answer in INTENTS.values()}
    assert len({c.group for c in index.cases}) == len(replies)  # one group per distinct reply here
    assert all(c.prior is not None and c.prior < 0 for c in index.cases)
    weights = load_weights(support_model_dir)
    assert weights["grounded"].fitted_on > 0 and "echo" in weights["grounded"].features
    assert "pmi" in weights["select"].features
    assert weights["retrieval"].features == ("similarity", "route", "agreement")
    route = index.route("where is my parcel")
    assert len(route) == len(replies)
    best = max(route, key=route.get)
    assert {c.agent for c in index.cases if c.group == best} == {INTENTS["order"][1]}


def test_the_history_s_intents_are_the_reply_groups_and_unnamed_replies_join_or_form_their_own():
    refund = ["Your refund of the order is on its way to your card.", "The refund is on its way to your card now."]
    cancel = ["I have cancelled the order for you.", "Your order is cancelled, no charge was made."]
    cases = [Case(f"refund please {i}", refund[i % 2], f"r{i}", intent="refund") for i in range(6)]
    cases += [Case(f"cancel it {i}", cancel[i % 2], f"c{i}", intent="cancel") for i in range(6)]
    # learned from use, with no intent: one close to a refund answer, one about something new
    cases += [Case("money back?", "Your refund is on its way to your card.", "s1"),
              Case("do you sell gift wrap", "Yes, gift wrapping costs two euros per parcel.", "s2")]
    index = CaseIndex(cases)
    index.group_replies()
    group = {c.conversation_id: c.group for c in index.cases}
    assert len({group[f"r{i}"] for i in range(6)}) == 1 and len({group[f"c{i}"] for i in range(6)}) == 1
    assert group["r0"] != group["c0"]  # two intents, two groups, though their replies differ
    assert group["s1"] == group["r0"]
    assert group["s2"] not in {group["r0"], group["c0"]}
    unnamed = CaseIndex([Case(c.customer, c.agent, c.conversation_id) for c in cases])
    unnamed.group_replies()  # no intents: clusters of the replies
    assert len({c.group for c in unnamed.cases}) > 1


@pytest.mark.parametrize("intent", sorted(INTENTS))
def test_grounded_replies_are_the_past_answer_for_new_wordings(bot, intent):
    new_wordings = {"order": "my parcel still has not come, where is it", "refund": "give me my money back please",
                    "password": "cannot sign in, password forgotten", "human": "connect me with a person please"}
    reply = bot.reply(new_wordings[intent], params=GREEDY)
    if intent == "human":
        assert reply.escalated  # asking for a person hands over before any reply is chosen
        return
    assert reply.text == INTENTS[intent][1]
    assert reply.grounding["mode"] == "grounded" and reply.grounding["source"] == "case"
    assert reply.grounding["case_conversation"] and 0 < reply.grounding["score"] <= 1
    assert reply.stats is None  # a past reply chosen, not the model's own shown


def test_every_mode_answers_and_select_never_generates(bot):
    select = bot.reply("where is my order?", mode="select")
    assert select.stats is None and select.grounding["source"] == "case"
    generated = bot.reply("where is my order?", params=GREEDY, mode="generate")
    assert generated.stats is not None and generated.stats.completion_tokens > 0
    assert generated.grounding["mode"] == "generate" and generated.grounding["source"] == "generated"
    with pytest.raises(ConfigError, match="grounded, select, generate"):
        bot.reply("where is my order?", mode="creative")


def test_the_model_judges_candidates_a_customer_would_not_see(bot):
    turns = [{"role": "user", "content": "where is my order"}]
    candidates = bot.grounder.gather(turns)
    assert len(candidates) > 1  # several groups offered, not only the nearest
    prompt, _ = bot.prompt(turns)
    # weights that always weigh the model (fitted ones weigh it only where it beat chance)
    bot.grounder.weights["select"] = Weights(("similarity", "route", "agreement", "pmi"), (1.0, 1.0, 1.0, 1.0))
    scored = bot.replier.rank(candidates, prompt, "select")
    assert all(c.pmi is not None for c in scored)
    own = "Your order is on its way and should arrive soon."
    ranked = bot.replier.rank(bot.grounder.gather(turns), prompt, "grounded", own)
    assert ranked[0].text == INTENTS["order"][1] and ranked[0].echo == max(c.echo for c in ranked) > 0.3
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_a_stored_reply_records_mode_case_and_scores(bot):
    conv = bot.start()
    turn = bot.stream(conv.id, "has my parcel shipped?", params=GREEDY)
    text = "".join(turn)
    reply = bot.store.messages(conv.id)[-1]
    assert reply.content == text.strip() == INTENTS["order"][1]
    assert reply.grounding["mode"] == "grounded" and reply.grounding["source"] == "case"
    assert reply.grounding["candidates"] and "score" in reply.grounding["candidates"][0]
    assert turn.grounding == reply.grounding
    generated = bot.stream(conv.id, "and my password?", params=GREEDY, mode="generate")
    "".join(generated)
    assert bot.store.messages(conv.id)[-1].grounding["mode"] == "generate"


def test_placeholders_in_a_chosen_past_reply_are_filled_from_the_conversation(bot):
    index = CaseIndex([Case("where is order 1234", "Order [ORDER_ID] left our warehouse; track it at {{Website Name}}.",
                            "c1", group=0),
                       Case("I want a refund", "Your refund is on its way.", "c2", group=1)])
    bot.grounder = bot.replier.grounder = Grounder(index)
    given = bot.reply("where is my order 55120?", mode="select").text
    assert given.startswith("Order 55120 left our warehouse; track it at our website.")
    missing = bot.reply("where is my order?", mode="select").text
    assert not RAW.search(missing) and missing.endswith("order number?")


def test_select_hands_over_when_no_past_reply_fits(bot):
    bot.grounder.weights["select"].fallback_below = 1.0  # no candidate can reach this score
    reply = bot.reply("where is my order?", mode="select")
    assert reply.escalated and reply.reason == "low_confidence"
    conv = bot.start()
    turn = bot.stream(conv.id, "where is my order?", mode="select")
    "".join(turn)
    assert turn.escalated and [m.template_name for m in bot.store.messages(conv.id)] == [None, "support/handoff.j2"]


def test_grounded_writes_its_own_reply_when_no_past_reply_fits(bot):
    bot.grounder.weights["grounded"].fallback_below = 1.0
    reply = bot.reply("where is my order?", params=GREEDY)
    assert reply.grounding["source"] == "generated" and reply.stats is not None
    assert reply.grounding["candidates"]  # what it weighed is kept


def test_the_reply_mode_comes_from_the_settings(appkit_home, support_model_dir, monkeypatch):
    (appkit_home).mkdir(parents=True, exist_ok=True)
    (appkit_home / "appkit.toml").write_text('[support]\nreply_mode = "generate"\n')
    b = SupportBot.open(model=str(support_model_dir), settings=load_settings(), policy=None)
    try:
        assert b.reply_mode == "generate"
        assert b.reply("where is my order?", params=GREEDY).stats is not None
    finally:
        b.close()
    (appkit_home / "appkit.toml").write_text('[support]\nreply_mode = "fancy"\n')
    with pytest.raises(ConfigError, match="fancy"):
        SupportBot.open(model=str(support_model_dir), settings=load_settings(), policy=None)


def test_the_model_writes_its_own_reply_only_below_the_score_where_that_got_more_turns_right():
    from apps.support.grounding import _threshold

    # turn -> (best past reply's score, was it right); and whether the model's own reply was right
    best = {t: (t / 10, int(t >= 5)) for t in range(10)}
    own = {t: 1.0 for t in range(5)} | {5: 0.0, 6: 0.0}
    assert 0.4 < _threshold(best, own) < 0.5  # generating turns 0-4 gains five of five (p = 0.03)
    assert _threshold(best, {t: 1.0 for t in range(3)}) == 0.0  # three of three is chance (p = 0.125)
    assert _threshold(best, {0: 0, 1: 0, 2: 0}) == 0.0  # the model never did better: never generate
    # two turns gained, one lost: within chance, so past replies stay
    assert _threshold(best, {0: 1.0, 1: 0.0, 2: 1.0} | {4: 0.0}) == 0.0


def test_the_model_is_weighed_only_where_retrieval_was_unsure_and_it_did_better_there(bot):
    from apps.support.grounding import _best_per_turn, _without_model

    turns = [{"role": "user", "content": "where is my order"}]
    echo_only = Weights(("similarity", "route", "agreement", "echo"), (0.0, 0.0, 0.0, 10.0), -5.0)
    own = INTENTS["password"][1]  # the model says something else
    bot.grounder.weights["grounded"] = echo_only
    assert bot.grounder.rank(bot.grounder.gather(turns), "grounded", own_reply=own)[0].text == INTENTS["password"][1]
    bot.grounder.weights["grounded"] = Weights(echo_only.features, echo_only.coef, echo_only.intercept,
                                               model_below=0.01)  # retrieval is surer than that here
    candidates = bot.grounder.gather(turns)
    assert bot.grounder.needs("grounded", candidates) == set()  # so the model is not even asked
    assert bot.grounder.rank(candidates, "grounded", own_reply=own)[0].text == INTENTS["order"][1]
    # fitting: where retrieval's best is sure (0.9), its pick counts, whatever the model's weights say
    retrieval = Weights(("similarity",), (1.0,), 0.0)
    sure, unsure = Candidate("a", "case", similarity=5.0), Candidate("b", "case", similarity=-5.0)
    picks = _best_per_turn(Weights(("similarity",), (-1.0,), 0.0, model_below=0.5), [sure, unsure], [1, 0],
                           [0, 0], retrieval)
    assert picks[0][1] == 1
    kept = _without_model(Weights(("similarity", "route", "agreement", "echo"), (1.0, 2.0, 3.0, 4.0), -1.0),
                          Weights(("similarity", "route", "agreement"), (5.0, 6.0, 7.0), -2.0))
    assert kept.coef == (5.0, 6.0, 7.0, 0.0) and kept.intercept == -2.0  # ranks as retrieval does


def test_grounded_writes_only_the_opening_of_its_own_reply_unless_it_may_show_it(bot, monkeypatch):
    import apps.support.grounding as grounding
    from appkit.engine import GenerationParams

    monkeypatch.setattr(grounding, "ECHO_TOKENS", 3)
    history = [{"role": "user", "content": "where is my order"}]
    prompt, _ = bot.prompt(history)
    params = GenerationParams(temperature=0.0, max_new_tokens=60)
    saved = dict(bot.grounder.weights)
    try:
        echo = Weights(("similarity", "route", "agreement", "echo"), (1.0, 1.0, 1.0, 1.0))
        bot.grounder.weights["grounded"] = echo  # the echo always weighed, the model's reply never shown
        draft = bot.replier.draft(history, prompt, "grounded", params)
        assert draft.generated is not None and draft.generated.completion_tokens <= 3
        assert draft.grounding.chosen.source == "case"
        bot.grounder.weights["grounded"] = Weights(echo.features, echo.coef, fallback_below=1.0)  # always shown
        draft = bot.replier.draft(history, prompt, "grounded", params)
        assert draft.grounding.chosen.source == "generated" and draft.generated.completion_tokens > 3
    finally:
        bot.grounder.weights.update(saved)


def test_ask_takes_a_reply_mode(capsys, appkit_home, support_model_dir):
    from appkit.cli import main

    code = main(["ask", "--model", str(support_model_dir), "--reply-mode", "select", "my parcel is late, where is it"])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == INTENTS["order"][1]
    assert "select: a past reply (conversation" in err
    code = main(["ask", "--model", str(support_model_dir), "--reply-mode", "poetic", "hello"])
    _, err = capsys.readouterr()
    assert code != 0 and "reply mode 'poetic' is not one of grounded, select, generate" in err
    assert "Traceback" not in err


def test_more_evidence_for_a_past_reply_never_lowers_its_score():
    import random

    from apps.support.grounding import RETRIEVAL_FEATURES, _fit

    # the router's group decides which candidates are right; among them, by chance, the less
    # similar were right more often (as on a few dozen validation exchanges)
    rng = random.Random(0)
    candidates, labels = [], []
    for _ in range(200):
        right = rng.random() < 0.3
        similarity = rng.uniform(0.2, 0.5) if right else rng.uniform(0.3, 0.6)
        route = rng.gauss(-0.5 if right else -2.0, 0.5)
        candidates.append(Candidate("a reply", "case", similarity=similarity, route=route,
                                    agreement=rng.uniform(0.1, 0.6)))
        labels.append(int(right))
    weights = _fit(candidates, labels, RETRIEVAL_FEATURES, len(candidates))
    coef = dict(zip(weights.features, weights.coef))
    assert min(coef.values()) >= 0.0 and coef["similarity"] == 0.0 and coef["route"] > 1.0
    closer, further = (Candidate(text, "case", similarity=s, route=-0.6) for text, s in (("a", 0.7), ("b", 0.4)))
    assert weights.score(closer) >= weights.score(further)


def test_the_weights_are_fitted_on_wordings_the_cases_do_not_already_hold():
    from apps.support.grounding import MIN_NEW, Exchange, new_wordings

    cases = [Case(q, answer, f"{name}{i}") for name, (qs, answer) in INTENTS.items() for i, q in enumerate(qs)]
    index = CaseIndex(cases)

    def exchange(text: str) -> Exchange:
        return Exchange([{"role": "user", "content": text}], "a reply")

    seen = [exchange(c.customer) for c in cases[:5]]  # word for word what past customers wrote
    new = [exchange(f"do you gift wrap {n} parcels for a birthday") for n in range(MIN_NEW)]
    assert new_wordings(index, seen + new) == new
    assert new_wordings(index, seen + new[:-1]) == seen + new[:-1]  # too few new wordings: all of them


def test_a_closer_wording_of_another_kind_of_answer_counts_as_wrong():
    from apps.support.grounding import NEAR_BEST, _right

    # the agent's reply is of group 1, and group 1's best candidate matches its wording 0.6
    assert _right(0.6, 1, 1, best=0.6) == 1 and _right(0.6 - NEAR_BEST / 2, 1, 1, best=0.6) == 1
    assert _right(0.9, 2, 1, best=0.6) == 0  # closer in words, but another kind of answer
    assert _right(0.4, 1, 1, best=0.6) == 0  # the right kind, but further from what the agent said
    # reply groups that are clusters of wordings, not intents, are no judge: wording alone decides
    assert _right(0.9, 2, None, best=0.9) == 1 and _right(0.6, 1, None, best=0.9) == 0


def test_reply_groups_are_intents_when_at_least_half_of_the_cases_name_one():
    named = [Case(f"q{i}", "a", f"c{i}", intent="refund" if i % 2 else "cancel") for i in range(6)]
    assert CaseIndex(named).groups_are_intents
    assert CaseIndex(named[:2] + [Case(f"u{i}", "b", f"u{i}") for i in range(3)]).groups_are_intents is False
    assert CaseIndex([Case("q", "a", "c", intent="refund")] * 3).groups_are_intents is False  # one intent
