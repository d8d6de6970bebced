"""Length control: where a draft ends, decided on the text as it streams.

The brief states the target length and the model learned from articles of stated lengths, but
a small model's sense of length is rough. Decoding makes it reliable:

- not before 80%: the engine may not end the text (``min_new_tokens``, from the model's
  tokens-per-word) until about 80% of the words are written; if it still ends short (a part
  full of markup), the draft is continued as a new part;
- at the target: the draft ends at the first sentence or paragraph end at or after it;
- never past 120%: a sentence that would cross 120% is left out when the draft already has
  80%; a run with no sentence end at all is cut at the last word that fits (rare).

Text is accepted a sentence at a time, so what was streamed never has to be taken back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from apps.writer.brief import count_words

LOW, HIGH = 0.8, 1.2
# A sentence ends at . ! ? or … (closing quotes, brackets and Markdown emphasis included) followed
# by whitespace; a unit also ends at a blank line (a paragraph or heading ends) and before a list
# item, heading or quote. A lone line break is not an end: Markdown blogs wrap lines inside
# sentences (18F's posts do), and ending there left drafts stopping mid-sentence ("... we were
# able to improve our").
_UNIT_END = re.compile(r"[.!?\u2026]+[\"'”’)\]*_]*\s+|\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*+][ \t]|\d+[.)][ \t]|#|>))")


@dataclass(frozen=True)
class LengthPlan:
    """The word counts a draft of ``target`` words must respect."""

    target: int

    @property
    def low(self) -> int:
        return math.ceil(LOW * self.target)

    @property
    def high(self) -> int:
        return math.floor(HIGH * self.target)


class DraftText:
    """A draft being written: text accepted so far, the pending sentence, and whether it is done."""

    def __init__(self, plan: LengthPlan) -> None:
        self.plan = plan
        self.text = ""  # accepted: complete sentences (and their trailing whitespace)
        self.words = 0
        self.pending = ""  # the current part's text after the last accepted sentence
        self.done = False
        self._accepted_in_part = False
        self._part_start = True

    def start_part(self) -> None:
        """A new part begins (its text continues the accepted text)."""
        self.pending = ""
        self._accepted_in_part = False
        self._part_start = True

    def feed(self, piece: str) -> str:
        """Add model text; returns the newly accepted text ('' if none yet)."""
        if self.done:
            return ""
        if self._part_start:  # a part's text starts at its first word, one space after the last part's
            piece = piece.lstrip()
            if not piece:
                return ""
            if self.text and not self.text[-1].isspace():
                piece = " " + piece
            self._part_start = False
        self.pending += piece
        out = []
        while not self.done and (m := _UNIT_END.search(self.pending)):
            unit, self.pending = self.pending[: m.end()], self.pending[m.end():]
            out.append(self._accept(unit))
        if not self.done and self.words + count_words(self.pending) > self.plan.high:
            out.append(self._overflow())
        return "".join(out)

    def end_part(self, reason: str) -> str:
        """The engine ended the current part (``end_of_turn``, ``stop``, ``length`` or ``cancelled``)."""
        if self.done:
            return ""
        out = ""
        if reason in ("end_of_turn", "stop"):
            out = self._accept(self.pending) if self.pending.strip() else ""
            self.pending = ""
            if self.words >= self.plan.low or reason == "stop":
                self.done = True
        elif reason == "length":
            # The part ran out of context mid-sentence: the next part rewrites that sentence,
            # unless nothing at all was accepted (then keep whole words, or we would never advance).
            if not self._accepted_in_part and self.pending.strip():
                cut = self.pending.rstrip()
                space = max(cut.rfind(" "), cut.rfind("\n"))
                out = self._accept(cut[: space + 1] if space > 0 else cut + " ")
            self.pending = ""
        else:
            self.done = True
        return out

    def finish(self) -> str:
        """The final text."""
        self.done = True
        return self.text.strip()

    def _accept(self, unit: str) -> str:
        if not unit.strip():  # blank lines: at most one empty line between paragraphs
            unit = unit[: max(0, 2 - (len(self.text) - len(self.text.rstrip("\n"))))] if self.text else ""
            self.text += unit
            return unit
        unit = re.sub(r"\n\s*\n\s*\n+", "\n\n", unit)
        n = count_words(unit)
        if self.words + n > self.plan.high:
            if self.words >= self.plan.low:
                self.done = True
                return ""
            return self._truncate(unit)
        self.text += unit
        self.words += n
        self._accepted_in_part = True
        if self.words >= self.plan.target:
            self.done = True
        return unit

    def _overflow(self) -> str:
        """The pending sentence alone crosses 120% with no end in sight."""
        if self.words >= self.plan.low:
            self.done = True
            return ""
        unit, self.pending = self.pending, ""
        return self._truncate(unit)

    def _truncate(self, unit: str) -> str:
        """Keep the words of ``unit`` that bring the draft to its target, and end it there."""
        room = self.plan.target - self.words
        kept = []
        for token in re.findall(r"\S+\s*", unit):
            if count_words("".join(kept) + token) > room:
                break
            kept.append(token)
        head = "".join(kept).rstrip()
        head = head.rstrip(",;:-–—") + ("…" if head and head[-1] not in ".!?…" else "")
        self.text += head
        self.words += count_words(head)
        self.done = True
        return head
