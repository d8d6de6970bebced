"""Placeholders in replies: filled from the conversation or the settings, or rephrased; never shown raw.

Past replies carry slots: curation writes ``[ORDER_ID]``, ``[EMAIL]`` ... where it removed
personal data, and histories such as Bitext write ``{{Order Number}}`` or ``{{Website Name}}``.
A customer must never see one. Each slot gets a *kind* from its name; then

- a value the customer gave in this conversation fills it (the order number they typed);
- otherwise a company fact from ``[support.facts]`` in appkit.toml fills it (phone, website ...);
- otherwise the ``support/placeholder.j2`` template rephrases it ("our website", "your order"),
  and for an identifier the bot needs, ``support/ask.j2`` adds a question asking for it.

Identifier slots take the words that announce them along ("order number {{Order Number}}" ->
"your order"), so the rephrased sentence still reads. Whatever is left that looks like a slot
(a generated ``{{Order Numb`` cut short) is removed last: no raw placeholder ever gets through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appkit.data.pii import scrub_pii

if TYPE_CHECKING:
    from appkit.prompts import Prompts

PLACEHOLDER_TEMPLATE = "support/placeholder.j2"
ASK_TEMPLATE = "support/ask.j2"

# {{Order Number}} (Bitext) or [ORDER_ID] (appkit's curation).
SLOT = re.compile(r"\{\{\s*(?P<name>[^{}\n]{1,80}?)\s*\}\}|\[(?P<tag>[A-Z][A-Z_]{1,24})\]")
# What a slot cut short or mangled by generation leaves behind.
_LEFTOVER = re.compile(r"\{\{[^{}\n]{0,80}\}?\}?|\}\}|\[[A-Z][A-Z_]{1,24}\]?")
# A raw placeholder as a customer would see it (what the benchmarks count).
RAW = re.compile(r"\{\{|\}\}|\[[A-Z][A-Z_]{2,24}\]")

TAG_KINDS = {"ORDER_ID": "order_id", "EMAIL": "email", "PHONE": "phone", "CARD": "card", "URL": "url"}
# Identifiers only the customer can give: filled from the conversation, else asked for.
IDENTIFIERS = ("order_id", "invoice_id", "tracking_id", "account_id")
# (kind, pattern over the lower-cased slot name), first match wins.
_NAME_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("tracking_id", re.compile(r"tracking (?:number|id|code)")),
    ("invoice_id", re.compile(r"(?:invoice|bill|receipt) (?:number|id|no)")),
    ("order_id", re.compile(r"(?:order|purchase|transaction|reference|confirmation) (?:number|id|no)|^\d{4,}$")),
    ("account_id", re.compile(r"account (?:number|id)|customer (?:number|id)|user ?name")),
    ("card", re.compile(r"card number")),
    ("support_phone", re.compile(r"phone|telephone|toll.free")),
    ("support_email", re.compile(r"e-?mail")),
    ("hours", re.compile(r"availability|hours|opening times|working days")),
    ("live_chat", re.compile(r"live chat|^chat$")),
    ("company", re.compile(r"company name|brand name|store name")),
    ("website", re.compile(r"website|web site|url|site name|app name|online store")),
]
# Words before an identifier slot that only announce it ("order number", "with the ID #").
_LEAD = re.compile(
    r"(?:\b(?P<det>the|your|this|that|its|an?)\s+)?"
    r"(?:\b(?P<noun>order|purchase|invoice|bill|account|tracking|transaction|reference|booking|receipt|card)s?\s+)?"
    r"(?:\b(?P<with>with\s+)?(?:the\s+)?(?:number|no\.?|id|code|nr|#)\s*(?::|is)?\s*)?$",
    re.I,
)
_TO_US = re.compile(r"\b(?:us|our|contact|reach|write to|email to)\b[^.!?\n]{0,25}$", re.I)
_DETERMINER_BEFORE = re.compile(r"\b(?:our|the|your|a|an|this|their|its)\s+$", re.I)
# A verb asking for the identifier itself: "enter the order number {{..}}" -> "enter your order number".
_ASKS_FOR_IT = re.compile(r"\b(?:enter|type|input|provide|share|give|send|include|quote|paste|fill in)"
                          r"(?:\s+(?:me|us))?(?:\s+with)?\s+$", re.I)
# "our website, {{Website Name}}": the slot only names what the words before it said.
_APPOSITION = re.compile(r"(?P<word>\w+)\s*,\s*$")
_NOUNS = {"order_id": "order", "invoice_id": "invoice", "tracking_id": "tracking number", "account_id": "account",
          "card": "card"}


def slot_kind(name: str) -> str:
    """The kind of a slot from its name: an identifier, a company fact, or ``label`` (a UI name)."""
    if name in TAG_KINDS:
        return TAG_KINDS[name]
    key = " ".join(name.lower().replace("_", " ").split())
    for kind, pattern in _NAME_KINDS:
        if pattern.search(key):
            return kind
    return "label" if name[:1].isupper() else "other"


def display_name(name: str) -> str:
    """``Order Number Anonymized`` -> ``Order Number``; ``ORDER_ID`` -> ``order id``."""
    if name in TAG_KINDS or name.isupper():
        return name.replace("_", " ").lower()
    return re.sub(r"\s+anonymi[sz]ed$", "", name.strip(), flags=re.I)


@dataclass
class Known:
    """What the conversation and the settings tell about the slots: values by kind."""

    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def gather(cls, customer_texts: Iterable[str], facts: Mapping[str, str] | None = None,
               company: str | None = None) -> Known:
        """Values the customer typed (latest wins) over the company's facts.

        A card number is never put back in a reply, even the customer's own.
        """
        values = {k: str(v) for k, v in (facts or {}).items() if str(v).strip()}
        if company and "company" not in values:
            values["company"] = company
        for text in customer_texts:
            found: list[tuple[str, str]] = []
            scrub_pii(text, values=found)
            for kind, value in found:
                if kind == "card":
                    continue
                if kind in ("email", "phone", "url"):
                    kind = f"customer_{kind}"
                values[kind] = value
        return cls(values)

    def value_for(self, kind: str) -> str | None:
        if kind in ("email", "phone", "url"):  # curation's tags: the customer's own, else the company's
            return self.values.get(f"customer_{kind}") or self.values.get(
                {"email": "support_email", "phone": "support_phone", "url": "website"}[kind])
        return self.values.get(kind)


@dataclass
class Filled:
    """A reply with its slots resolved."""

    text: str
    filled: list[str] = field(default_factory=list)  # kinds filled with a value
    rephrased: list[str] = field(default_factory=list)  # kinds replaced by words
    asked: list[str] = field(default_factory=list)  # identifiers the reply asks the customer for


def unresolved_kinds(text: str) -> list[str]:
    """Kinds of the slots in ``text`` that no template phrase covers well (``other``)."""
    return [k for k in (slot_kind(m.group("name") or m.group("tag")) for m in SLOT.finditer(text)) if k == "other"]


def fill_placeholders(text: str, known: Known, prompts: Prompts, *, ask: bool = True, at_start: bool = True) -> Filled:
    """``text`` with every slot filled or rephrased; with ``ask``, a question for missing identifiers.

    A rephrasing that begins a sentence is capitalised ("Order [ORDER_ID] shipped" -> "Your order
    shipped"); ``at_start``: ``text`` begins the reply (a streamed piece after the first does not).
    """
    result = Filled(text)
    pieces: list[str] = []
    last = 0
    for m in SLOT.finditer(text):
        name = m.group("name") or m.group("tag")
        kind = slot_kind(name)
        value = known.value_for(kind)
        before = text[last:m.start()]
        if value:
            result.filled.append(kind)
            pieces.append(before + value)
        elif kind in _NOUNS:
            lead = _LEAD.search(before)
            noun = (lead.group("noun") if lead and lead.group("noun") else _NOUNS[kind]).lower()
            head = before[: lead.start()] if lead and lead.group(0).strip() else before
            if _ASKS_FOR_IT.search(head) and not noun.endswith("number"):
                noun += " number"  # what to enter is the number, not the order
            if lead and lead.group("with") and not lead.group("noun"):
                head += lead.group("with")  # "associated with the ID {{..}}" -> "associated with your order"
            phrase = _capitalised(_render(prompts, name, kind, head, noun=noun), head, at_start and not pieces)
            pieces.append(_join(head, phrase))
            result.rephrased.append(kind)
            if kind in IDENTIFIERS and kind not in result.asked:
                result.asked.append(kind)
        else:
            phrase = _capitalised(_render(prompts, name, kind, before), before, at_start and not pieces)
            named = _APPOSITION.search(before)
            if named and phrase.split() and named.group("word").lower() == phrase.split()[-1].lower():
                before = before[: named.end("word")]  # "our website, our website" -> "our website"
                phrase = ""
            pieces.append(before + phrase)
            result.rephrased.append(kind)
        last = m.end()
    pieces.append(text[last:])
    out = _LEFTOVER.sub("", "".join(pieces))
    if ask and result.asked:
        question = prompts.render(ASK_TEMPLATE, kinds=result.asked).text.strip()
        out = f"{out.rstrip()}\n\n{question}" if question else out
    result.text = _tidy(out)
    return result


def _render(prompts: Prompts, name: str, kind: str, before: str, *, noun: str = "") -> str:
    return prompts.render(PLACEHOLDER_TEMPLATE, label=display_name(name), kind=kind, noun=noun,
                          after_determiner=bool(_DETERMINER_BEFORE.search(before)),
                          to_us=bool(_TO_US.search(before))).text.strip()


def _capitalised(phrase: str, before: str, at_start: bool) -> str:
    """``phrase`` with a capital first letter where it begins a sentence."""
    text = before.rstrip()
    starts = (not text and at_start) or text.endswith((".", "!", "?"))
    return phrase[:1].upper() + phrase[1:] if starts else phrase


def _join(head: str, phrase: str) -> str:
    if not phrase:
        return head.rstrip()
    return f"{head.rstrip()} {phrase}" if head and not head.endswith((" ", "\n", "(")) else head + phrase


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+([.,;:!?)])", r"\1", text)  # "your order ." -> "your order."
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


class PlaceholderStream:
    """Fills slots in streamed text, holding back only what a slot could still change.

    Held back: an unclosed ``{{`` or ``[TAG`` and the few words before it (an identifier's
    announcing words go with it), and the last few words of any text (a slot may follow them).
    Everything before is filled and released at once, so the reply still streams word by word.
    The question for missing identifiers comes once, after the reply.
    """

    HOLD_WORDS = 5  # "with the order number" and one more

    def __init__(self, pieces: Iterable[str], known: Known, prompts: Prompts) -> None:
        self._pieces = pieces
        self.known = known
        self.prompts = prompts
        self.asked: list[str] = []
        self._released = False  # whether a piece went out already: the next does not begin the reply

    def __iter__(self) -> Iterator[str]:
        held = ""
        for piece in self._pieces:
            held += piece
            cut = _release_point(held, self.HOLD_WORDS)
            if cut:
                yield self._fill(held[:cut])
                held = held[cut:]
        if held:
            yield self._fill(held)
        if self.asked:
            ask = self.prompts.render(ASK_TEMPLATE, kinds=self.asked).text.strip()
            if ask:
                yield "\n\n" + ask

    def cancel(self) -> None:
        """Stop the source (a generating model) when whoever reads this stops early."""
        stop = getattr(self._pieces, "cancel", None)
        if callable(stop):
            stop()

    def _fill(self, text: str) -> str:
        filled = fill_placeholders(text, self.known, self.prompts, ask=False, at_start=not self._released)
        self._released = self._released or bool(text.strip())
        self.asked += [k for k in filled.asked if k not in self.asked]
        # Pieces are joined as they come: keep the whitespace the model put at the edges.
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        return lead + filled.text + trail if filled.text else lead + trail


_OPEN_SLOT = re.compile(r"\{\{[^{}\n]*$|\{$|\[[A-Z_]*$")


def _release_point(text: str, hold_words: int) -> int:
    """How much of ``text`` is final: all but an open slot and the ``hold_words`` words before it
    (or, with no open slot, the last ``hold_words`` words); released at a word boundary."""
    open_slot = _OPEN_SLOT.search(text)
    end = open_slot.start() if open_slot else len(text)
    starts = [m.start() for m in re.finditer(r"\{\{[^{}\n]*\}\}\S*|\S+", text[:end])]  # a slot is one word
    if len(starts) <= hold_words:
        return 0
    cut = starts[-hold_words]
    # Never part a slot from the words before it: they announce it ("order number", replaced
    # with it) or decide its wording ("our" before {{Website Name}}).
    for slot in SLOT.finditer(text, cut):
        lead = _LEAD.search(text[:slot.start()])
        start = lead.start() if lead and lead.group(0).strip() else slot.start()
        before = [w for w in starts if w < start]
        start = before[-1] if before else 0
        if start < cut:
            return start
    return cut


def customer_texts(messages: Sequence[Mapping[str, str]]) -> list[str]:
    """The customer's turns of a conversation, oldest first."""
    return [m["content"] for m in messages if m.get("role") == "user"]
