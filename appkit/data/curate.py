"""Clean conversations before training: empty turns, duplicates, toxic rows, personal data, overlong turns.

The steps run in this order, each on what the previous kept:
1. strip turns, drop empty ones, merge neighbours of one role; drop conversations left without
   a customer or an agent turn;
2. drop exact duplicates (same turns after lower-casing and collapsing whitespace), keeping the first;
3. optional toxicity hook (the safety package passes its classifier);
4. replace personal data with placeholders (see pii.py);
5. cut turns longer than ``max_turn_chars`` at a word boundary.
Duplicates are judged before scrubbing, so two tickets that differ only by order number stay two.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from appkit.data import pii as _pii
from appkit.data.pii import PLACEHOLDERS, scrub_pii
from appkit.data.shapes import make_turns
from appkit.data.types import Conversation, Turn
from appkit.errors import ConfigError

__all__ = ["CurationReport", "curate", "scrub_pii", "truncate_text"]

_PII_NAMES = {
    "email": "emails", "phone": "phone numbers", "card": "card numbers", "order_id": "order ids", "url": "URLs",
}


@dataclass
class CurationReport:
    """Counts of what ``curate`` changed; ``as_dict()`` is JSON-serialisable for model metadata."""

    conversations_in: int = 0
    conversations_out: int = 0
    empty_turns_dropped: int = 0
    empty_conversations_dropped: int = 0
    duplicates_dropped: int = 0
    toxic_dropped: int = 0
    toxic_kept: int = 0
    turns_truncated: int = 0
    pii: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def pii_total(self) -> int:
        return sum(self.pii.values())

    def as_dict(self) -> dict[str, Any]:
        """A plain-dict copy (JSON-serialisable)."""
        return asdict(self)

    def summary(self) -> str:
        """A few human lines describing what curation did."""
        lines = [
            f"curated {self.conversations_in} -> {self.conversations_out} conversations",
            f"  dropped: {self.empty_conversations_dropped} without a customer and an agent turn, "
            f"{self.duplicates_dropped} duplicates, {self.toxic_dropped} toxic"
            + (f" (kept {self.toxic_kept} flagged toxic)" if self.toxic_kept else ""),
            f"  {self.empty_turns_dropped} empty turns removed, {self.turns_truncated} long turns cut to "
            f"{self.settings.get('max_turn_chars', '?')} characters",
        ]
        if self.pii:
            found = ", ".join(f"{n} {_PII_NAMES.get(k, k)}" for k, n in sorted(self.pii.items(), key=lambda kv: -kv[1]))
            lines.append(f"  personal data replaced: {found}")
        elif self.settings.get("scrub_pii"):
            lines.append("  personal data replaced: none found")
        return "\n".join(lines)


def truncate_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:  # a word boundary in the last half: cut there, else cut mid-word
        cut = cut[:space]
    opened = cut.rfind("{{")
    if opened > cut.rfind("}}") and opened > 0:  # never leave half a template slot like "{{Order"
        cut = cut[:opened]
    return cut.rstrip()


def _fingerprint(turns: list[Turn]) -> str:
    h = hashlib.sha1()
    for t in turns:
        h.update(t.role.encode())
        h.update(b"\x00")
        h.update(" ".join(t.text.lower().split()).encode())
        h.update(b"\x01")
    return h.hexdigest()


def curate(
    conversations: Iterable[Conversation],
    *,
    max_turn_chars: int = 2000,
    scrub_pii: bool = True,  # noqa: F811 - the flag shares the function's name: one vocabulary
    seed: int = 0,
    is_toxic: Callable[[str], bool] | None = None,
    toxic: str = "drop",
    toxic_roles: tuple[str, ...] = ("user", "assistant"),
    scrub_urls: bool = True,
) -> tuple[list[Conversation], CurationReport]:
    """Clean ``conversations`` for training; returns new Conversation objects and a CurationReport.

    Args:
        max_turn_chars: longer turns are cut at a word boundary.
        scrub_pii: replace emails, phones, card numbers and order-like ids with placeholders.
        seed: accepted so one seed can be passed through a pipeline; curation is deterministic.
        is_toxic: optional classifier; a conversation with a toxic turn (in ``toxic_roles``) is
            dropped (``toxic="drop"``) or kept and marked ``meta["toxic"] = True`` (``"keep"``).
        scrub_urls: also replace URLs with [URL] when scrubbing.

    Raises:
        ConfigError: ``max_turn_chars`` is not positive or ``toxic`` is not "drop"/"keep".
    """
    if max_turn_chars < 1:
        raise ConfigError(f"max_turn_chars must be at least 1, got {max_turn_chars}.")
    if toxic not in ("drop", "keep"):
        raise ConfigError(f"toxic={toxic!r}: expected 'drop' or 'keep'.")
    report = CurationReport(
        settings={
            "max_turn_chars": max_turn_chars, "scrub_pii": scrub_pii, "scrub_urls": scrub_urls,
            "toxicity_filter": is_toxic is not None, "toxic": toxic, "seed": seed,
        }
    )
    pii: Counter[str] = Counter()
    seen: set[str] = set()
    out: list[Conversation] = []
    for conv in conversations:
        report.conversations_in += 1
        turns = make_turns((t.role, t.text) for t in conv.turns)
        report.empty_turns_dropped += sum(1 for t in conv.turns if not t.text.strip())
        roles = {t.role for t in turns}
        if "user" not in roles or "assistant" not in roles:
            report.empty_conversations_dropped += 1
            continue
        key = _fingerprint(turns)
        if key in seen:
            report.duplicates_dropped += 1
            continue
        seen.add(key)
        meta = dict(conv.meta)
        if is_toxic is not None and any(is_toxic(t.text) for t in turns if t.role in toxic_roles):
            if toxic == "drop":
                report.toxic_dropped += 1
                continue
            report.toxic_kept += 1
            meta["toxic"] = True
        if scrub_pii:
            turns = [_scrubbed(t, pii, scrub_urls) for t in turns]
        cut = [Turn(t.role, truncate_text(t.text, max_turn_chars)) for t in turns]
        report.turns_truncated += sum(1 for a, b in zip(turns, cut) if a.text != b.text)
        out.append(Conversation(conv.id, cut, conv.source, meta))
    report.conversations_out = len(out)
    report.pii = {k: pii[k] for k in PLACEHOLDERS if pii[k]}
    return out, report


def _scrubbed(turn: Turn, counts: Counter[str], urls: bool) -> Turn:
    text, found = _pii.scrub_pii(turn.text, urls=urls)  # inside curate() the name scrub_pii is the flag
    counts.update(found)
    return Turn(turn.role, text)
