"""The support app's ``[support]`` table of appkit.toml: every key, its type and its default.

    [support]
    reply_mode = "grounded"            # grounded | select | generate (see README, Support bot)
    min_confidence = -2.0              # hand over when the model's own reply scores below this
    company = "Acme"                   # the name the bot speaks for (default: the one it was trained with)
    sentiment = true                   # score customers' messages with the active sentiment model
    escalate_on_sentiment_drop = 1.0   # hand over on a fall this large between two messages; 0 = never

    [support.facts]                    # fill reply slots such as [PHONE] or {{Website}}
    support_phone = "0800 123 4567"
    website = "shop.example.com"

Checked when settings load (appkit.sections): a misspelled key or a value of the wrong type is
an error naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union, get_args

ReplyMode = Literal["grounded", "select", "generate"]
REPLY_MODES: tuple[str, ...] = get_args(ReplyMode)


@dataclass(frozen=True)
class SupportSettings:
    """How the support bot replies and when it hands a conversation to a person."""

    reply_mode: ReplyMode = "grounded"
    # Mean log-probability per reply token under which the bot hands over. Replies to questions
    # like the training data score about -0.3 on the demo model; off-topic guesses below -2.
    min_confidence: float = -2.0
    company: str | None = None
    sentiment: bool = True
    # A fall of 1.0 is e.g. from +0.5 (pleased) to -0.5 (upset) between two customer messages.
    escalate_on_sentiment_drop: float = 1.0
    # Company facts by free-form name (support_phone, website, hours ...); numbers are fine too.
    facts: dict[str, Union[str, int, float]] = field(default_factory=dict)


DEFAULTS = SupportSettings()

__all__ = ["DEFAULTS", "REPLY_MODES", "ReplyMode", "SupportSettings"]
