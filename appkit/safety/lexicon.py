"""The lexicon floor: a word list plus phrase patterns, leetspeak-aware, word-boundary aware.

Always available (no model, no download), microseconds per text, and the only backend that
knows *where* the offending words are, so the policy uses it to mask spans whatever scores.

Matching works on whole words, so "Scunthorpe", "assassin" and "cocktail" never match. Inside
a word, leetspeak is undone before lookup: ``a$$`` -> ass, ``sh1t`` -> shit, ``f*ck`` (a ``*``
stands for any one letter), ``fuuuck`` (letter runs collapsed), ``f.u.c.k`` (spaced letters).
Digits count as letters only in words with at least two real letters, so order numbers and
model names ("A55", "455") stay clean.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from appkit.errors import ConfigError
from appkit.safety.wordlist import IDENTITY, INSULT, OBSCENE, PATTERNS, TERMS, THREAT

LABELS: tuple[str, ...] = ("toxicity", OBSCENE, INSULT, THREAT, IDENTITY)
_SUFFIXES = ("s", "es", "ed", "er", "ers", "ing", "in", "ings", "y", "ie", "ies", "ier", "iest")
_LEET = {"@": "a", "4": "a", "$": "s", "5": "s", "1": "i", "!": "i", "|": "i", "3": "e", "0": "o",
         "7": "t", "+": "t", "8": "b", "9": "g", "€": "e"}
_DIGITS = set("0123456789")
# A word: letters, digits and the symbols leetspeak writes letters with.
_WORD = re.compile(r"(?:[^\W_]|[@$!|*+€])+")
# Single characters separated by one of " .-_": f.u.c.k, s h i t (three or more).
_SPACED = re.compile(r"(?<![^\W_])(?:[^\W_@$*][ .\-_]){2,}[^\W_@$*](?![^\W_])")
_RUNS3 = re.compile(r"(.)\1{2,}")
_RUNS2 = re.compile(r"(.)\1+")
_SEEN_LIMIT = 50_000  # words whose lookup is remembered (a bound on memory, not on correctness)


@dataclass(frozen=True)
class Hit:
    """One match: the span in the original text, what matched, its label and severity."""

    start: int
    end: int
    term: str
    label: str
    severity: float


@dataclass(frozen=True)
class _Entry:
    term: str
    label: str
    severity: float


@cache
def _fold_char(ch: str) -> str:
    """Lower-case, accent-free, full-width-free form of one character (always one character)."""
    decomposed = unicodedata.normalize("NFKD", ch)
    if decomposed and all(unicodedata.combining(c) for c in decomposed[1:]):
        ch = decomposed[0]
    low = ch.lower()
    return low if len(low) == 1 else ch


def _fold(text: str) -> str:
    if text.isascii():  # most text: lower-casing is the whole fold (and keeps the length)
        return text.lower()
    return "".join(_fold_char(c) for c in text)


class Lexicon:
    """Terms and patterns with labels and severities; finds hits, scores and masks texts."""

    def __init__(self, terms: Iterable[tuple[str, str, float, str]], patterns: Iterable[tuple[str, str, float]],
                 *, name: str = "lexicon") -> None:
        self.name = name
        self._exact: dict[str, _Entry] = {}
        self._by_length: dict[int, list[str]] = {}
        for term, label, severity, inflect in terms:
            for form in _forms(term, inflect):
                old = self._exact.get(form)
                if old is None or old.severity < severity:
                    self._exact[form] = _Entry(term, label, severity)
        for form in self._exact:
            self._by_length.setdefault(len(form), []).append(form)
        self._patterns = [(re.compile(p), label, severity) for p, label, severity in patterns]
        # One pass to see whether any pattern can match (true for few texts) before running each: 3x faster.
        self._any_pattern = re.compile("|".join(f"(?:{p})" for p, _, _ in patterns)) if self._patterns else None
        self._seen: dict[str, tuple[_Entry | None, str | None]] = {}  # word -> _lookup's answer (words repeat)
        self._plain_words: dict[str, bool] = {}  # word -> _plain's answer

    @classmethod
    def builtin(cls) -> Lexicon:
        """appkit's own curated list (appkit.safety.wordlist)."""
        return _builtin()

    @classmethod
    def from_file(cls, path: str | Path, *, include_builtin: bool = True, label: str = OBSCENE,
                  severity: float = 0.8) -> Lexicon:
        """A lexicon from a word-list file, one term a line, optionally ``term,label,severity``.

        Lines starting with ``#`` are comments; a term of several words becomes a phrase pattern.

        Raises:
            ConfigError: the file is missing or a line names an unknown label or a bad severity.
        """
        path = Path(path).expanduser()
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            raise ConfigError(f"word list {path}: cannot be read ({e.strerror}).") from None
        terms: list[tuple[str, str, float, str]] = list(TERMS) if include_builtin else []
        patterns: list[tuple[str, str, float]] = list(PATTERNS) if include_builtin else []
        for n, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(",")] if "," in line else [line]
            term, lab, sev = parts[0], label, severity
            if len(parts) > 1 and parts[1]:
                lab = parts[1]
                if lab not in LABELS[1:]:
                    raise ConfigError(f"word list {path}, line {n}: label {lab!r} is not one of {', '.join(LABELS[1:])}.")
            if len(parts) > 2 and parts[2]:
                try:
                    sev = float(parts[2])
                except ValueError:
                    sev = -1.0
                if not 0.0 <= sev <= 1.0:
                    raise ConfigError(f"word list {path}, line {n}: severity {parts[2]!r} must be a number from 0 to 1.")
            words = _fold(term).split()
            if len(words) > 1:
                patterns.append((r"\b" + r"\s+".join(re.escape(w) for w in words) + r"\b", lab, sev))
            elif words:
                terms.append((words[0], lab, sev, "s"))
        return cls(terms, patterns, name=f"lexicon:{path.name}" if not include_builtin else "lexicon+wordlist")

    # --- matching ----------------------------------------------------------------------------

    def hits(self, text: str) -> list[Hit]:
        """Every match in ``text``, in order of position."""
        if not text:
            return []
        found: list[Hit] = []
        folded = _fold(text)
        respelt: list[tuple[int, int, str]] = []  # words whose de-leeted spelling differs ("sh1t")
        # Most texts hold only plain words (no entry, no respelling): then no word needs its position.
        words = () if all(map(self._plain, _WORD.findall(text))) else _WORD.finditer(text)
        for m in words:
            start, end = m.span()
            word = m.group()
            # '!' and '|' at a word's edge are punctuation ("shit!"), inside they are letters ("sh!t")
            while word and word[-1] in "!|+":
                word, end = word[:-1], end - 1
            while word and word[0] in "!|+":
                word, start = word[1:], start + 1
            if not word:
                continue
            entry, spelled = self._lookup(word)
            if spelled is not None and spelled != folded[start:end]:
                respelt.append((start, end, spelled.ljust(end - start)[: end - start]))
            if entry is not None:
                found.append(Hit(start, end, entry.term, entry.label, entry.severity))
        for m in _SPACED.finditer(text):
            joined = _fold(re.sub(r"[ .\-_]", "", m.group()))
            entry, _ = self._lookup(joined)
            if entry is not None and len(joined) >= 3:
                found.append(Hit(m.start(), m.end(), entry.term, entry.label, entry.severity))
        flat = _respell(folded, respelt)
        if self._any_pattern is not None and self._any_pattern.search(flat):
            for pattern, label, severity in self._patterns:
                for m in pattern.finditer(flat):
                    found.append(Hit(m.start(), m.end(), m.group(), label, severity))
        found.sort(key=lambda h: (h.start, -h.end))
        return found

    def _plain(self, word: str) -> bool:
        """Whether ``word`` (as _WORD found it) neither is an entry nor is spelt differently when de-leeted."""
        plain = self._plain_words.get(word)
        if plain is None:
            entry, spelled = self._lookup(word)
            plain = (entry is None and word[0] not in "!|+" and word[-1] not in "!|+"
                     and (spelled is None or spelled == _fold(word)))
            if len(self._plain_words) >= _SEEN_LIMIT:
                self._plain_words.clear()
            self._plain_words[word] = plain
        return plain

    def _lookup(self, word: str) -> tuple[_Entry | None, str | None]:
        """The entry ``word`` spells (if any) and its de-leeted spelling (same length, for patterns)."""
        found = self._seen.get(word)
        if found is None:
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            found = self._seen[word] = self._spell(word)
        return found

    def _spell(self, word: str) -> tuple[_Entry | None, str | None]:
        folded = _fold(word)
        letters = sum(c.isalpha() for c in folded)
        if letters == 0:
            return None, None
        digits_ok = letters >= 2
        spelled = "".join(_LEET.get(c, c) if (c not in _DIGITS or digits_ok) else c for c in folded)
        candidates = [spelled]
        if "1" in folded or "|" in folded:  # 1 and | are l as often as i: "a11" -> all, "f|ag" -> flag
            candidates.append("".join("l" if c in "1|" else x for c, x in zip(folded, spelled)))
        for cand in list(candidates):
            for collapsed in (_RUNS3.sub(r"\1\1", cand), _RUNS2.sub(r"\1", cand)):
                if collapsed not in candidates:
                    candidates.append(collapsed)
        for cand in candidates:
            if "*" in cand:
                form = self._wildcard(cand)
                if form is not None:  # spell it out, so "you are a f*cking idiot" reads as a phrase
                    return self._exact[form], form
            elif cand in self._exact:
                return self._exact[cand], spelled
        return None, spelled

    def _wildcard(self, word: str) -> str | None:
        """``f*ck``: each ``*`` is one letter; at least two real letters, first one real."""
        real = sum(c != "*" for c in word)
        if real < 2 or word[0] == "*" or real < len(word) / 2:
            return None
        regex = re.compile("".join("[a-z]" if c == "*" else re.escape(c) for c in word))
        best: str | None = None
        for form in self._by_length.get(len(word), ()):
            if regex.fullmatch(form) and (best is None or self._exact[form].severity > self._exact[best].severity):
                best = form
        return best

    # --- scoring and masking -----------------------------------------------------------------

    def scores(self, text: str) -> dict[str, float]:
        """Scores per label: a noisy-or of the severities of the hits (toxicity: of all hits)."""
        return _combine(self.hits(text))

    @staticmethod
    def score_hits(hits: Sequence[Hit]) -> dict[str, float]:
        """``scores`` of a text from its ``hits`` (when the hits are wanted too)."""
        return _combine(hits)

    def mask(self, text: str, labels: Sequence[str] = (OBSCENE,), char: str = "*") -> tuple[str, int]:
        """``text`` with the words of ``labels`` replaced by ``char`` (same length); and how many."""
        spans = [(h.start, h.end) for h in self.hits(text) if h.label in labels and " " not in text[h.start:h.end]]
        if not spans:
            return text, 0
        chars = list(text)
        for start, end in spans:
            for i in range(start, end):
                if not chars[i].isspace():
                    chars[i] = char
        return "".join(chars), len(spans)


def _respell(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span replaced by its same-length spelling."""
    if not spans:
        return text
    parts, at = [], 0
    for start, end, spelled in spans:
        parts += [text[at:start], spelled]
        at = end
    return "".join(parts) + text[at:]


def _combine(hits: Sequence[Hit]) -> dict[str, float]:
    keep = {label: 1.0 for label in LABELS}
    for h in hits:
        keep[h.label] *= 1.0 - h.severity
        keep["toxicity"] *= 1.0 - h.severity
    return {label: round(1.0 - keep[label], 4) for label in LABELS}


def _forms(term: str, inflect: str) -> list[str]:
    """``term`` and its inflected forms (doubling the last consonant before a vowel suffix)."""
    term = _fold(term)
    if inflect == "":
        return [term]
    suffixes = ("s", "es") if inflect == "s" else _SUFFIXES
    forms = [term]
    for suffix in suffixes:
        forms.append(term + suffix)
        if suffix[0] in "aeiouy" and term[-1] not in "aeiouy":
            forms.append(term + term[-1] + suffix)
    return forms


@cache
def _builtin() -> Lexicon:
    return Lexicon(TERMS, PATTERNS)


class LexiconClassifier:
    """The lexicon as a ToxicityClassifier: scores are noisy-or severities, never a model."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or Lexicon.builtin()
        self.name = self.lexicon.name
        self.labels = LABELS

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores for each text (``[]`` for ``[]``)."""
        if isinstance(texts, str):
            texts = [texts]
        return [self.lexicon.scores("" if t is None else str(t)) for t in texts]
