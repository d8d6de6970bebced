"""Incremental detokenization with stop strings: emit text as soon as it is final."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TextStream:
    """Turns a growing list of token ids into text pieces that never need to be taken back.

    Text is held back while it ends in an incomplete UTF-8 character (byte-level BPE splits
    emoji over several tokens) or while its tail could still become one of the stop strings.
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.emitted = 0  # characters of the decoded text already handed out
        self.stopped = False  # a stop string was found

    def push(self, token_id: int) -> str:
        """Add one token; return the newly final text (maybe empty)."""
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for s in self.stop:
            cut = text.find(s)
            if cut != -1:
                self.stopped = True
                return self._emit(text[:cut])
        if text.endswith("\ufffd"):
            return ""
        return self._emit(text[: len(text) - self._held_back(text)])

    def finish(self) -> str:
        """Everything not yet emitted (called when generation ends without a stop string)."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        return self._emit(text.rstrip("\ufffd"))

    def text(self) -> str:
        """The full reply so far as emitted."""
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)[: self.emitted]

    def _held_back(self, text: str) -> int:
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:n]):
                    longest = max(longest, n)
                    break
        return longest

    def _emit(self, final: str) -> str:
        piece = final[self.emitted :]
        self.emitted = max(self.emitted, len(final))
        return piece
