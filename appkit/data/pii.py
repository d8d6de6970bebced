"""Replace personal data in support texts with readable placeholders ([EMAIL], [PHONE] ...).

Patterns run in a fixed order, most specific first, so a card number is not half-eaten as a
phone number and a URL's digits are not taken for an order id. Placeholders contain no digits
or ``@``, so later patterns never match inside them; template slots such as ``{{Order Number}}``
(Bitext) hold neither and are left as they are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

PLACEHOLDERS = {
    "url": "[URL]",
    "email": "[EMAIL]",
    "card": "[CARD]",
    "order_id": "[ORDER_ID]",
    "phone": "[PHONE]",
}

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.I)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b"
)
# 13-19 digits, optionally grouped by spaces or dashes; the Luhn check decides.
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# An id right after a word that announces one: "order 48213", "tracking number is 1Z999AA1",
# "invoice #INV-2231". The keyword (and filler like "number is") stays, the id goes.
_ID_AFTER_KEYWORD = re.compile(
    r"(?P<lead>\b(?:order|ticket|tracking|invoice|account|acct|reference|ref|confirmation|case|purchase|"
    r"booking|reservation|shipment|parcel|package|return|rma|transaction|receipt|customer|member)s?"
    r"(?:\s*(?:number|no\.?|num|nr|id|code|is|was|with|the|[#:=])){0,4}\s*)"
    r"(?P<id>#?[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){3,})",
    re.I,
)
# The same announcement right before a number (used to tell a Luhn-valid order number from a card).
_ORDER_WORD_BEFORE = re.compile(
    r"\b(?:order|purchase|tracking|invoice|ticket|reference|confirmation|booking|reservation|shipment|"
    r"transaction|account)s?(?:\s*(?:number|no\.?|num|nr|id|code|is|was|with|the|[#:=])){0,4}\s*$",
    re.I,
)
_PREFIXED_ID = re.compile(r"\b(?:ORD|ORDER|INV|TKT|TICKET|REF|CASE|PO|RMA|TRK)[-_#]?\d{3,}\b", re.I)
_HASH_ID = re.compile(r"(?<![\w&])#\d{4,}\b")
_PHONE = re.compile(
    r"(?<![\w+-])(?:"
    r"\+\d{7,15}"  # +447911123456
    # (977) 625-2661, 0333 103 1031, 07911 123456
    r"|(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,6}){1,4}"
    r"|\(\d{1,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r")(?![\w-])"
)
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_DIGIT_RUN = re.compile(r"(?<!\w)(?<!\d[.,])\d{6,}(?!\w|[.,]\d)")
_PHONE_WORDS = re.compile(r"\b(?:call|phone|tel|telephone|mobile|cell|whatsapp|fax|sms|text|ring)\b", re.I)


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn checksum that every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _url(m: re.Match[str]) -> tuple[str, str | None]:
    url = m.group(0)
    trail = re.search(r"[.,;:!?)\]]+$", url)  # sentence punctuation after a link is not the link
    return (PLACEHOLDERS["url"] + (trail.group(0) if trail else ""), "url")


def _card(m: re.Match[str]) -> tuple[str, str | None]:
    digits = _digits(m.group(0))
    # One in ten long order numbers passes Luhn too: "purchase 113542617735902" is an order id.
    announced = _ORDER_WORD_BEFORE.search(m.string, max(0, m.start() - 30), m.start())
    if announced and digits == m.group(0):
        return (m.group(0), None)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return (PLACEHOLDERS["card"], "card")
    return (m.group(0), None)


def _id_after_keyword(m: re.Match[str]) -> tuple[str, str | None]:
    token = m.group("id").lstrip("#")
    n_digits = sum(c.isdigit() for c in token)
    n_alpha = sum(c.isalpha() for c in token)
    # Needs enough digits to be an id and not a quantity ("order 2 more") or a year-like word.
    if n_digits >= 4 or (n_digits >= 2 and n_alpha >= 2 and len(token) >= 6):
        lead = re.sub(r"\s*#\s*$", " ", m.group("lead"))  # "order #123" -> "order [ORDER_ID]"
        return (lead + PLACEHOLDERS["order_id"], "order_id")
    return (m.group(0), None)


def _phone(m: re.Match[str]) -> tuple[str, str | None]:
    text = m.group(0)
    if 7 <= len(_digits(text)) <= 15 and not _DATE.fullmatch(text.strip()):
        return (PLACEHOLDERS["phone"], "phone")
    return (text, None)


def _value(m: re.Match[str], kind: str) -> str:
    """The personal value a match replaced: the id alone when a keyword announced it."""
    if kind == "order_id" and "id" in m.re.groupindex:
        return m.group("id").lstrip("#")
    if kind == "url":
        return re.sub(r"[.,;:!?)\]]+$", "", m.group(0))
    return m.group(0).strip()


def _fixed(kind: str) -> Callable[[re.Match[str]], tuple[str, str | None]]:
    return lambda m: (PLACEHOLDERS[kind], kind)


_PASSES: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], tuple[str, str | None]]]] = [
    ("url", _URL, _url),
    ("email", _EMAIL, _fixed("email")),
    ("card", _CARD, _card),
    ("order_id", _ID_AFTER_KEYWORD, _id_after_keyword),
    ("order_id", _PREFIXED_ID, _fixed("order_id")),
    ("order_id", _HASH_ID, _fixed("order_id")),
    ("phone", _PHONE, _phone),
]


def scrub_pii(text: str, *, urls: bool = True,
              values: list[tuple[str, str]] | None = None) -> tuple[str, Counter[str]]:
    """Replace emails, phones, card numbers, order-like ids (and URLs) with placeholders; count them.

    ``values``, when given, receives (kind, original text) of every replacement in order, so a
    caller that owns the text (the customer's own conversation) can put a value back later.
    """
    counts: Counter[str] = Counter()
    for kind, pattern, decide in _PASSES:
        if kind == "url" and not urls:
            continue

        def sub(m: re.Match[str], decide=decide) -> str:
            replacement, found = decide(m)
            if found:
                counts[found] += 1
                if values is not None:
                    values.append((found, _value(m, found)))
            return replacement

        text = pattern.sub(sub, text)

    def run(m: re.Match[str]) -> str:
        # A bare long number: a phone when the words before it say so, otherwise an order-like id.
        before = text[max(0, m.start() - 30):m.start()]
        kind = "phone" if _PHONE_WORDS.search(before) and len(m.group(0)) <= 15 else "order_id"
        counts[kind] += 1
        if values is not None:
            values.append((kind, m.group(0)))
        return PLACEHOLDERS[kind]

    text = _DIGIT_RUN.sub(run, text)
    return text, counts
