"""How a text is cleaned before a toxicity model reads it: one function, for training and scoring.

A classifier trained on tweets learns the platform as well as the abuse: in Davidson et al.'s
data retweet markers, @mentions, t.co links and HTML entities (``&#8220;``) are far more common
in some classes than others, so a model that sees them scores the *style* of a text, and text
from anywhere else (a support chat, a forum comment) is judged by marks it never carries.
Removing them, for training and for scoring alike, leaves the words. Letter runs are cut to
two ("sooooo", "fuuuuck" -> "soo", "fuuck") so that emphasis does not make a new word.
"""

from __future__ import annotations

import html
import re
import unicodedata

VERSION = 1  # saved with a model; a model normalised otherwise is refused, not misread
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+:?")
_RETWEET = re.compile(r"\bRT\b:?")
_HASH = re.compile(r"#(?=\w)")
_RUNS = re.compile(r"(\S)\1{2,}")
_SPACE = re.compile(r"\s+")
_PRIVATE = re.compile("[\ue000-\uf8ff\ud800-\udfff\U000f0000-\U0010ffff]")


def normalise(text: str) -> str:
    """``text`` without platform marks, HTML entities, private-use code points and long letter runs; lower case."""
    if "&" in text:
        text = html.unescape(html.unescape(text))  # Davidson's tweets hold "&amp;#8220;": escaped twice
    if "://" in text or "www." in text.lower():  # only then can _URL match: it is costly on every text
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _MENTION.sub(" ", text)
    if "RT" in text:
        text = _RETWEET.sub(" ", text)
    if "#" in text:
        text = _HASH.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # private-use code points and lone surrogates (tweets' emoji of old) carry no words
        text = _PRIVATE.sub("", text)
    text = _RUNS.sub(r"\1\1", text.lower())
    return _SPACE.sub(" ", text).strip()
