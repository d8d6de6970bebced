"""Map speaker names found in a file (customer, AGENT, SYSTEM, Alice ...) to chat roles."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from appkit.errors import ConfigError, DataError

# Role a speaker maps to; "skip" drops the turn (e.g. ABCD's "action" lines are system logs).
TARGETS = ("user", "assistant", "system", "skip")

KNOWN_SPEAKERS: dict[str, str] = {
    **{name: "user" for name in (
        "customer", "client", "user", "human", "caller", "usr", "cust", "buyer", "guest", "visitor",
    )},
    # "system" is the agent here: task-oriented datasets (SGD) call the agent side SYSTEM.
    # A real system prompt only exists in the chat-messages shape, which maps roles verbatim.
    **{name: "assistant" for name in (
        "agent", "assistant", "support", "system", "bot", "representative", "rep", "operator",
        "sys", "gpt", "ai", "chatbot", "model", "staff", "advisor", "support agent", "virtual assistant",
    )},
    "action": "skip",
}


def normalize(name: str) -> str:
    """Speaker names compare case-insensitively, with ``_``/``-``/runs of spaces as one space."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _target(value: str, name: str) -> str:
    role = normalize(value)
    role = role if role in TARGETS else KNOWN_SPEAKERS.get(role, "")
    if not role:
        raise ConfigError(
            f"speaker map {name!r}={value!r}: the role must be one of {', '.join(TARGETS)} "
            "(or customer/agent)."
        )
    return role


def parse_speaker_map(items: Iterable[str]) -> dict[str, str]:
    """Parse ``--speaker-map`` values like ``"Alice=user"`` into a dict."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, role = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--speaker-map {item!r}: expected NAME=ROLE, e.g. Alice=user or Bob=agent.")
        out[name.strip()] = _target(role, name.strip())
    return out


class SpeakerMapper:
    """Resolve speaker names to roles; collects unknown names so one error can list them all."""

    def __init__(self, speaker_map: Mapping[str, str] | None = None) -> None:
        self.table = dict(KNOWN_SPEAKERS)
        for name, role in (speaker_map or {}).items():
            self.table[normalize(str(name))] = _target(str(role), str(name))
        self.unknown: dict[str, str] = {}  # raw value -> where first seen
        self.blank: list[str] = []  # where a turn had no speaker at all

    def role(self, value: str, where: str) -> str | None:
        """The role for ``value`` or None (remembered as unknown or blank) when it is not known."""
        if not value.strip():
            self.blank.append(where)
            return None
        role = self.table.get(normalize(value))
        if role is None:
            self.unknown.setdefault(value, where)
        return role

    def raise_unknown(self, path: object, column: str) -> None:
        """Raise one DataError naming every unknown speaker found, if any."""
        if not self.unknown:
            return
        shown = list(self.unknown.items())[:8]
        listed = "; ".join(f"{value!r} (first at {where})" for value, where in shown)
        more = f" and {len(self.unknown) - len(shown)} more" if len(self.unknown) > len(shown) else ""
        users = ", ".join(n for n, r in KNOWN_SPEAKERS.items() if r == "user")
        agents = ", ".join(n for n, r in KNOWN_SPEAKERS.items() if r == "assistant")
        example = shown[0][0]
        raise DataError(
            f"{path}: unknown speaker {listed}{more} in {column!r}. Known names (any case) for the "
            f"customer: {users}; for the agent: {agents}. Say which role each name plays with "
            f"speaker_map={{{example!r}: 'user'}} or on the command line --speaker-map "
            f"'{example}=user' (roles: user, assistant, system, skip)."
        )
