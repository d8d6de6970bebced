"""The records every reader produces and every trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    text: str


@dataclass
class Conversation:
    """An ordered list of turns with an id that is unique within its source.

    ``source`` names where it came from (``file:line`` or ``file#record``) so later errors and
    reports can point back at the input.
    """

    id: str
    turns: list[Turn]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_assistant(self) -> bool:
        return any(t.role == "assistant" for t in self.turns)

    def as_messages(self) -> list[dict[str, str]]:
        """The turns as chat-template messages: ``[{"role": ..., "content": ...}]``."""
        return [{"role": t.role, "content": t.text} for t in self.turns]


@dataclass(frozen=True)
class Document:
    """A piece of raw text (an article, a post) with its front matter."""

    id: str
    text: str
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
