"""The brief: what a draft should be (title, format, tone, length, tags), validated and rendered.

The same template renders the brief when training (from an article's front matter and length)
and when writing (from the user's flags), so the model learns what each field means.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from appkit.errors import ConfigError

if TYPE_CHECKING:
    from appkit.prompts import Prompts, Rendered

BRIEF_TEMPLATE = "writer/brief.j2"
FORMATS = ("blog", "social", "email", "product")
# A length per format when --words is not given: what each shape usually runs to.
DEFAULT_WORDS = {"blog": 400, "social": 60, "email": 200, "product": 120}
# Below 20 words "within 25%" is a handful of words; above 2000 a CPU-sized model writes for
# minutes and its drafts wander (the longest training articles are ~1,500 words at the 90th percentile).
MIN_WORDS, MAX_WORDS = 20, 2000
MAX_TITLE_CHARS = 300
MAX_TAGS = 5
TAIL_WORDS = 40  # how much of the text so far a continuation prompt repeats


@dataclass(frozen=True)
class Brief:
    """One piece to write."""

    title: str
    format: str = "blog"
    tone: str | None = None
    words: int = DEFAULT_WORDS["blog"]
    tags: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (stored with every draft)."""
        out = asdict(self)
        out["tags"] = list(self.tags)
        return out


def make_brief(
    title: str, format: str | None = None, tone: str | None = None, words: int | None = None, tags: Any = (),
) -> Brief:
    """A validated brief from what a user typed.

    Raises:
        ConfigError: an empty or overlong title, an unknown format, or words outside 20-2000.
    """
    title = " ".join(str(title or "").split())
    if not title:
        raise ConfigError("the title is empty: say what the piece is about, e.g. --title \"Spring sale\".")
    if len(title) > MAX_TITLE_CHARS:
        raise ConfigError(f"the title is {len(title)} characters long; keep it under {MAX_TITLE_CHARS}.")
    format = (format or "blog").strip().lower()
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}.")
    if words is None:
        words = DEFAULT_WORDS[format]
    if isinstance(words, bool) or not isinstance(words, int):
        raise ConfigError(f"words must be a whole number, got {words!r}.")
    if not MIN_WORDS <= words <= MAX_WORDS:
        raise ConfigError(
            f"--words {words}: a draft must be between {MIN_WORDS} and {MAX_WORDS} words long."
        )
    tone = " ".join(str(tone).split()) if tone else None
    if isinstance(tags, str):
        tags = [tags]
    clean_tags = tuple(dict.fromkeys(t for t in (" ".join(str(x).split()) for x in tags or ()) if t))[:MAX_TAGS]
    return Brief(title, format, tone or None, words, clean_tags)


def render_brief(prompts: Prompts, brief: Brief, *, written: int = 0, tail: str = "") -> Rendered:
    """The user message the model is given: the brief, plus the end of the text so far for a later part."""
    return prompts.render(BRIEF_TEMPLATE, title=brief.title, format=brief.format, tone=brief.tone,
                          words=brief.words, tags=list(brief.tags), written=written, tail=tail)


def brief_messages(prompts: Prompts, brief: Brief, *, written: int = 0, tail: str = "") -> list[dict[str, str]]:
    """``render_brief`` as chat messages."""
    return [{"role": "user", "content": render_brief(prompts, brief, written=written, tail=tail).text}]


_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_URL = re.compile(r"(?:https?://|www\.)\S+")
_HTML_TAG = re.compile(r"<[^>\n]{1,200}>")
_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")


def count_words(text: str) -> int:
    """Words a reader would count in Markdown: link targets, bare URLs and HTML tags are not words."""
    text = _HTML_TAG.sub(" ", _URL.sub(" ", _LINK_TARGET.sub("]", text)))
    return len(_WORD.findall(text))


def last_words(text: str, n: int = TAIL_WORDS) -> str:
    """The end of ``text`` from its ``n``-th last whitespace-separated word (formatting kept)."""
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    if not starts:
        return ""
    return text[starts[max(0, len(starts) - n)]:].strip()
