"""How the support model is prompted, identically at training and at reply time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from appkit.data import Conversation, Turn
from appkit.prompts import Prompts, Rendered
from apps.support.cases import CaseIndex, cases_from, query_of

SYSTEM_TEMPLATE = "support/system.j2"
DEFAULT_COMPANY = "our company"
CASES_PER_PROMPT = 2
REPLY_ROOM = 128  # tokens kept free for the reply when trimming a long conversation
TOPIC_HINT = "\n(topic: {topic})"  # after each customer message the model reads (see with_topics)


def system_message(prompts: Prompts, company: str, messages: Sequence[dict[str, str]],
                   index: CaseIndex | None, *, exclude_conversation: str | None = None,
                   cases_per_prompt: int = CASES_PER_PROMPT) -> Rendered:
    """The system prompt for ``messages``, with the most similar past cases when ``index`` is given."""
    cases = []
    if index is not None and cases_per_prompt > 0:
        message, context = query_of(messages)
        found = index.search(message, cases_per_prompt, context=context, exclude_conversation=exclude_conversation)
        cases = [{"customer": c.customer, "agent": c.agent} for c in found]
    return prompts.render(SYSTEM_TEMPLATE, company=company, cases=cases)


def fit_prompt(engine: Any, prompts: Prompts, company: str, turns: Sequence[dict[str, str]],
               index: CaseIndex | None, cases_per_prompt: int) -> tuple[list[dict[str, str]], Rendered]:
    """The model's input for ``turns`` (in the model's view, ending with the customer's turn).

    Oldest turns are dropped first until the prompt leaves room for a reply; the system prompt is
    always kept (with the retrieved cases a model trained with them expects: fewer of them when
    the last message alone leaves no room). A message too long even then is the engine's to refuse.
    """
    turns = list(turns)
    budget = engine.context_length - REPLY_ROOM
    cases = cases_per_prompt
    while True:
        system = system_message(prompts, company, turns, index, cases_per_prompt=cases)
        messages = [{"role": "system", "content": system.text}, *turns]
        if len(engine.prompt_ids(messages)) <= budget:
            return messages, system
        if len(turns) > 1:
            turns = turns[1:]
        elif cases > 0:
            cases -= 1
        else:
            return messages, system


def model_prompt(engine: Any, prompts: Prompts, company: str, history: Sequence[dict[str, str]],
                 index: CaseIndex | None, *, topics: bool, cases_per_prompt: int = 0
                 ) -> tuple[list[dict[str, str]], Rendered]:
    """The model's input for a raw conversation ``history`` (ending with the customer's turn), as
    the bot builds it and the grounding fit must see it: customers' personal data replaced as in
    training ("order [ORDER_ID]"), each customer message followed by the router's topic when the
    model was trained so (``topics``), trimmed to the context by ``fit_prompt``."""
    from apps.support.replies import model_view  # replies builds on grounding, which needs this module's cases

    turns = model_view([m for m in history if m["role"] != "system"])
    if topics and index is not None:
        turns = with_topics(turns, index.topic)
    return fit_prompt(engine, prompts, company, turns, index, cases_per_prompt)


def with_system_prompt(conversations: Sequence[Conversation], prompts: Prompts, company: str,
                       index: CaseIndex | None) -> list[Conversation]:
    """Training conversations prefixed with the system prompt the bot will use at reply time.

    A training conversation never retrieves its own cases: at reply time the answer is not in
    the index either, so the model must learn to adapt similar cases, not to copy the answer.
    """
    out = []
    for conv in conversations:
        system = system_message(prompts, company, conv.as_messages(), index, exclude_conversation=conv.id)
        turns = [Turn("system", system.text), *(t for t in conv.turns if t.role != "system")]
        out.append(Conversation(conv.id, turns, conv.source, conv.meta))
    return out


def with_topics(messages: Sequence[dict[str, str]], topic_of: Callable[[str, str], str | None]) -> list[dict[str, str]]:
    """``messages`` with a topic hint after each customer message that the next turn answers
    (and after the last one, which the model is about to answer).

    ``topic_of(message, context)`` names the kind of answer the message calls for (the case
    index's router: ``CaseIndex.topic``), ``context`` being the agent turn before it. The model
    writes its reply after reading it: retrieval is better than a small model at telling kinds of
    question apart in new words, the model better at writing the answer for this conversation.
    """
    out = []
    for i, m in enumerate(messages):
        answered = i + 1 == len(messages) or messages[i + 1]["role"] == "assistant"
        if m["role"] == "user" and answered:
            context = messages[i - 1]["content"] if i > 0 and messages[i - 1]["role"] == "assistant" else ""
            topic = topic_of(m["content"], context)
            if topic:
                m = {**m, "content": m["content"] + TOPIC_HINT.format(topic=topic)}
        out.append(m)
    return out


def with_training_topics(conversations: Sequence[Conversation], index: CaseIndex,
                         held_out: Sequence[str | None] | None = None) -> list[Conversation]:
    """Conversations whose customer messages carry the topic hint, as the bot will show it.

    ``held_out``: the topic of each of the index's cases (``CaseIndex.held_out_topics``: what a
    router that never saw the message names), for the conversations the index was built from
    (training), so the model learns how often the topic is wrong on new wordings. Without it
    (validation), the index's router names each topic, as at reply time.
    """
    counts = [len(cases_from([conv])) for conv in conversations]  # held_out is in cases_from order
    if held_out is not None and len(held_out) != sum(counts):
        raise ValueError("held_out topics need the conversations the index was built from")
    mine = iter(held_out or [])
    out = []
    for conv, count in zip(conversations, counts):
        own = iter([next(mine) for _ in range(count)] if held_out is not None else [])

        def topic_of(message: str, context: str, own: Any = own) -> str | None:
            return next(own, None) or index.topic(message, context)

        turns = [t for t in conv.turns if t.role != "system"]
        hinted = with_topics([{"role": t.role, "content": t.text} for t in turns], topic_of)
        out.append(Conversation(conv.id, [Turn(m["role"], m["content"]) for m in hinted], conv.source, conv.meta))
    return out
