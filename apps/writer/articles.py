"""A brand's articles as training material: cleaned text, the brief each one answers, its date.

``read_corpus`` gives documents with their front matter; here each becomes an ``Article``:

- the text loses the site generator's template tags (Jekyll/Liquid ``{% image ... %}``,
  ``{{ "/path/" | url }}`` -> ``/path/``): they are build instructions, not the brand's voice;
- unless links are kept, links keep their words and lose their addresses (``[our guide](https://..)``
  -> ``our guide``), and images, bare URLs and HTML tags go: a small model cannot know real
  addresses, so it learned to invent them (18F: addresses, images and HTML are 9.3% of the
  characters, and a 150-word draft held five made-up links); an address token is not spent on prose;
- the brief is derived from the front matter and the text: title (``title:``, else the first
  ``# heading``, else the file name), tags (``tags:``/``categories:``), the length in words
  (rounded to 10, as a user would ask), and a format from the text's shape (see ``derive_format``);
- the date comes from ``date:``, else from a ``YYYY-MM-DD`` file-name prefix (Jekyll's convention),
  so the newest articles can be held out as an honest test of the learned voice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appkit.data import Document
from appkit.errors import DataError
from apps.writer.brief import MAX_TAGS, Brief, count_words

MIN_ARTICLE_WORDS = 10  # shorter "articles" (a lone link, a stub) teach nothing about a voice
# The blog corpora seen so far hold only blog posts. A post this short reads like an
# announcement on social media (18F: 6 of 471 posts), so it trains the "social" format.
SOCIAL_MAX_WORDS = 150

_LIQUID_URL = re.compile(r"\{\{\s*[\"']([^\"']*)[\"']\s*\|\s*\w+\s*\}\}")
_LIQUID = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.S)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")  # [words](address "title")
_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.M)  # [id]: https://...
_REFERENCE = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")  # [words][id]
_AUTOLINK = re.compile(r"[ \t]*<(?:https?://|mailto:)[^>\s]*>")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_BARE_URL = re.compile(r"[ \t]*\b(?:https?://|www\.)[^\s)\]>]*[^\s)\]>.,;:!?'\"]")  # a sentence's full stop stays
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Article:
    """One article: its cleaned Markdown body and what the brief says about it."""

    id: str
    title: str
    text: str
    tags: tuple[str, ...] = ()
    date: dt.date | None = None
    source: str = ""

    @property
    def words(self) -> int:
        return count_words(self.text)

    def brief(self) -> Brief:
        """The brief this article answers (as training shows it to the model)."""
        words = self.words
        return Brief(self.title, derive_format(self.text, words), None, max(10, round(words, -1)), self.tags)


def derive_format(text: str, words: int | None = None) -> str:
    """``social`` for a short post (at most 150 words), ``blog`` otherwise.

    Only shapes the text shows are derived: nothing in a blog corpus marks an email or a
    product description, so those formats are never invented for training.
    """
    return "social" if (words if words is not None else count_words(text)) <= SOCIAL_MAX_WORDS else "blog"


def clean_text(text: str, *, keep_links: bool = False) -> str:
    """The article body without site-generator template tags (and link addresses), with tidy blank lines."""
    text = _LIQUID_URL.sub(r"\1", text)
    text = _LIQUID.sub("", text)
    if not keep_links:
        text = strip_links(text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def strip_links(text: str) -> str:
    """Links reduced to their words; images, link definitions, URLs and HTML tags removed."""
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _REFERENCE.sub(r"\1", text)
    text = _LINK_DEFINITION.sub("", text)
    text = _AUTOLINK.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = _BARE_URL.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", text)


def articles_from(documents: Sequence[Document], *, keep_links: bool = False) -> tuple[list[Article], int]:
    """Articles from corpus documents, and how many documents were too short to use.

    Raises:
        DataError: no document has at least 10 words of text.
    """
    out: list[Article] = []
    short = 0
    for doc in documents:
        article = article_from(doc, keep_links=keep_links)
        if article.words < MIN_ARTICLE_WORDS:
            short += 1
            continue
        out.append(article)
    if not out:
        where = documents[0].source.rsplit("/", 1)[0] if documents else "the corpus"
        raise DataError(
            f"{where}: no usable article; every one of the {len(documents)} documents has fewer than "
            f"{MIN_ARTICLE_WORDS} words of text. The writer learns a voice from whole articles."
        )
    return out, short


def article_from(doc: Document, *, keep_links: bool = False) -> Article:
    """One document as an article (title, tags and date from its front matter, else its text and name)."""
    meta = doc.meta or {}
    text = clean_text(doc.text, keep_links=keep_links)
    title = _text(meta.get("title"))
    if not title:
        heading = _HEADING.search(text)
        if heading and not text[: heading.start()].strip():
            title = heading.group(1)
            text = text[heading.end():].strip()
        else:
            title = _title_from_name(doc.id)
    tags = meta.get("tags") or meta.get("categories") or ()
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[,\s]+" if "," not in tags else r"\s*,\s*", tags) if t]
    tag_list = tuple(dict.fromkeys(_text(t) for t in tags if _text(t)))[:MAX_TAGS] if isinstance(tags, (list, tuple)) else ()
    return Article(doc.id, " ".join(title.split()), text, tag_list, article_date(meta.get("date"), doc.id), doc.source)


def article_date(value: Any, name: str = "") -> dt.date | None:
    """The date of an article: its ``date:`` value, else a ``YYYY-MM-DD`` prefix of its file name."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    for candidate in (str(value or ""), name.rsplit("/", 1)[-1]):
        m = _DATE_PREFIX.match(candidate.strip())
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                continue
    return None


def holdout_split(articles: Sequence[Article], fraction: float) -> tuple[list[Article], list[Article]]:
    """(older articles, the newest ``fraction`` of them) by date; undated articles count as oldest.

    The newest posts are the honest test of a voice: a model trained on the past is asked to
    score what the brand wrote next, not a random post from the middle of its history.
    """
    if not 0 <= fraction < 1:
        raise DataError(f"the held-out fraction must be at least 0 and below 1, got {fraction}.")
    n = int(round(len(articles) * fraction))
    if fraction > 0 and len(articles) >= 3:
        n = max(n, 1)
    order = sorted(articles, key=lambda a: (a.date or dt.date.min, a.id))
    return order[: len(order) - n], order[len(order) - n:]


def chunk_documents(documents: Sequence[Document], words: int, limit: int | None = None, *,
                    keep_links: bool = False) -> list[Article]:
    """Text cut into article-sized pieces (about ``words`` words, at blank lines), spread over the text.

    For "another voice" to compare against (a play, another brand's writing): each piece gets
    a brief like an article's, titled by its first line, and is cleaned as the brand's articles were.
    """
    pieces: list[tuple[str, str]] = []
    for doc in documents:
        current: list[str] = []
        count = 0
        for block in re.split(r"\n\s*\n", clean_text(doc.text, keep_links=keep_links)):
            if not block.strip():
                continue
            current.append(block.strip())
            count += count_words(block)
            if count >= words:
                pieces.append((doc.id, "\n\n".join(current)))
                current, count = [], 0
        if count >= words // 2:
            pieces.append((doc.id, "\n\n".join(current)))
    if limit is not None and len(pieces) > limit:
        step = len(pieces) / limit
        pieces = [pieces[int(i * step)] for i in range(limit)]
    out = []
    for i, (doc_id, text) in enumerate(pieces):
        first = next((line.strip() for line in text.splitlines() if line.strip()), "Untitled")
        out.append(Article(f"{doc_id}#{i}", first[:80], text))
    return out


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _title_from_name(name: str) -> str:
    stem = _DATE_PREFIX.sub("", name.rsplit("/", 1)[-1]).strip("-_ ")
    words = re.split(r"[-_\s]+", stem)
    return " ".join(words).capitalize() if stem else name
