"""How the support model is prompted, identically at training and at reply time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appkit.data import Conversation, Turn
from appkit.prompts import Prompts, Rendered
from apps.support.cases import CaseIndex, query_of

SYSTEM_TEMPLATE = "support/system.j2"
DEFAULT_COMPANY = "our company"
CASES_PER_PROMPT = 2
REPLY_ROOM = 128  # tokens kept free for the reply when trimming a long conversation


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
