"""When a customer asks for a person rather than the bot."""

from __future__ import annotations

import re

# Asking for a person, in the ways support logs show it: "agent please", "talk to a human",
# "can I speak with someone real", "get me a manager". Not: "your agent said ..." mid-sentence
# after other words, which is a complaint the bot can still answer.
_HUMAN = re.compile(
    r"""
    ^\W*(agent|human|representative|operator|person)\b             # the message starts with it
    | \b(talk|speak|chat|connect|transfer|put)\b[^.?!]{0,30}\b
        (human|person|people|someone|somebody|agent|representative|operator|manager|supervisor|staff)\b
    | \b(real|live|actual)\s+(person|human|agent|people)\b
    | \bhuman\s+(agent|being|support)\b
    | \b(get|want|need)\s+(me\s+)?(a|an|the|your)?\s*(manager|supervisor|human|representative)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


def asks_for_human(message: str) -> bool:
    """Whether ``message`` asks to be handed to a human agent."""
    return bool(_HUMAN.search(message))
