"""How the support model is prompted, identically at training and at reply time."""

from __future__ import annotations

from collections.abc import Sequence

from appkit.data import Conversation, Turn
from appkit.prompts import Prompts, Rendered
from apps.support.cases import CaseIndex, query_of

SYSTEM_TEMPLATE = "support/system.j2"
DEFAULT_COMPANY = "our company"
CASES_PER_PROMPT = 2


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
