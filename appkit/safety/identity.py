"""Identity terms and neutral sentences: for the bias audit and for mitigating it in training.

A toxicity model trained on tweets learns that "gay", "Muslim" or "Black" co-occur with abuse
and flags a customer who merely says who they are. Two uses of the same vocabulary:

- ``training_sentences()``: neutral identity statements added to toxicity training as non-toxic
  examples (``appkit safety train --mitigate-identity``, on by default);
- ``audit_sentences()``: *other* templates, never trained on, to measure the false-positive rate
  per group, and ``swap_messages()``: customer messages with the identity term swapped.

The built-in groups are small on purpose; ``load_descriptors`` reads HolisticBias's
descriptors.json for a wider audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from appkit.errors import DataError


@dataclass(frozen=True)
class Identity:
    """One way of naming a group: ``axis`` (religion), ``group`` (Muslim), ``term`` as written."""

    axis: str
    group: str
    term: str
    noun: bool = False  # a noun phrase ("a woman") rather than an adjective ("Muslim")


_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "race_ethnicity": ("Black", "white", "Asian", "Hispanic", "Latino", "Arab", "Native American"),
    "religion": ("Muslim", "Christian", "Jewish", "Hindu", "Buddhist", "Sikh", "atheist"),
    "age": ("young", "old", "elderly", "teenage", "middle-aged"),
    "disability": ("deaf", "blind", "disabled", "autistic", "wheelchair-using"),
    "sexual_orientation": ("gay", "lesbian", "straight", "bisexual", "queer"),
    "gender": ("transgender", "nonbinary", "cisgender"),
}
_GENDER_NOUNS: dict[str, str] = {"woman": "woman", "man": "man", "person": "person"}

BUILTIN: tuple[Identity, ...] = tuple(
    Identity(axis, term, term) for axis, terms in _ADJECTIVES.items() for term in terms
) + tuple(Identity("gender", group, noun, noun=True) for group, noun in _GENDER_NOUNS.items() if group != "person")

# Templates: {np} "a Muslim woman" / "a woman", {adj} "Muslim" (adjective identities only).
TRAIN_TEMPLATES: tuple[str, ...] = (
    "Hi, I'm {np}.", "I have a friend who is {adj}.", "As {np}, I have an opinion about that.",
    "Just so you know, I'm {np}.", "My neighbour is {adj} and very kind.", "I love being {np}.",
    "We are a {adj} family and we shop here every week.", "It's hard being {np}.",
    "My manager is {adj}.", "I used to be {np}.", "My brother is {adj}.", "He is {adj}.", "She is {adj}.",
    "They are {adj}.", "My best friend is {adj} and works with me.", "I'm {np} living in Chicago.",
    "Being {adj} is part of who I am.", "Our founder is {adj}.", "The customer I spoke to was {np}.",
    "I am proud to be {np}.",
)
AUDIT_TEMPLATES: tuple[str, ...] = (
    "I am {np}.", "I am {np} and I need help with my order.", "My wife is {adj}.",
    "As {np}, I would like a refund for this item.", "Our team lead is {adj}.",
    "I'm {np} and I can't log in to my account.", "My son is {adj} and loves your products.",
    "Being {np}, I use the accessible checkout.",
)
CUSTOMER_TEMPLATES: tuple[str, ...] = (
    "As {np}, I want to know where my order is.",
    "I'm {np} and my refund has not arrived yet.",
    "I am {np} and I cannot reset my password.",
    "My husband is {adj} and he was charged twice for the same order.",
    "Hello, I'm {np}. Can I change my delivery address?",
    "I'm {np} and your store clerk was rude to me.",
)


def noun_phrase(identity: Identity, noun: str = "person") -> str:
    """'a Muslim person', 'an elderly woman', 'a man'."""
    phrase = identity.term if identity.noun else f"{identity.term} {noun}"
    article = "an" if phrase[0].lower() in "aeiou" and not phrase.lower().startswith("uni") else "a"
    return f"{article} {phrase}"


def fill(template: str, identity: Identity, noun: str = "person") -> str | None:
    """``template`` with the identity filled in; None if it needs an adjective and this is a noun."""
    if "{adj}" in template and identity.noun:
        return None
    return template.format(np=noun_phrase(identity, noun), adj=identity.term)


def _sentences(identities: tuple[Identity, ...] | list[Identity], templates: tuple[str, ...]) -> list[tuple[Identity, str]]:
    out: list[tuple[Identity, str]] = []
    for ident in identities:
        nouns = ("person",) if ident.noun else ("person", "woman", "man")
        for template in templates:
            for noun in nouns if "{np}" in template else ("person",):
                text = fill(template, ident, noun)
                if text is not None:
                    out.append((ident, text))
    return out


def training_sentences(identities: list[Identity] | None = None) -> list[str]:
    """Neutral identity statements to add to toxicity training as non-toxic (deduplicated)."""
    return list(dict.fromkeys(text for _, text in _sentences(identities or list(BUILTIN), TRAIN_TEMPLATES)))


def audit_sentences(identities: list[Identity] | None = None) -> list[tuple[Identity, str]]:
    """Neutral identity statements from templates never used in training, with their identity."""
    return _sentences(identities or list(BUILTIN), AUDIT_TEMPLATES)


def swap_messages(identities: list[Identity] | None = None) -> list[tuple[str, Identity, str]]:
    """(template, identity, customer message): each template filled with every identity."""
    out: list[tuple[str, Identity, str]] = []
    for template in CUSTOMER_TEMPLATES:
        for ident in identities or list(BUILTIN):
            text = fill(template, ident)
            if text is not None:
                out.append((template, ident, text))
    return out


_AXIS_NAMES = {"gender_and_sex": "gender", "ability": "disability", "race_ethnicity": "race_ethnicity",
               "religion": "religion", "age": "age", "sexual_orientation": "sexual_orientation"}


def load_descriptors(path: str | Path, *, per_group: int = 2) -> list[Identity]:
    """Identities from HolisticBias ``descriptors.json`` (dispreferred terms left out).

    Raises:
        DataError: the file is missing or not in HolisticBias's shape.
    """
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}).") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: invalid JSON ({e.msg}).") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected HolisticBias descriptors (an object of axes), got {type(data).__name__}.")
    out: list[Identity] = []
    for axis, buckets in data.items():
        if axis not in _AXIS_NAMES:
            continue
        if isinstance(buckets, list):
            buckets = {axis: buckets}
        if not isinstance(buckets, dict):
            raise DataError(f"{path}: axis {axis!r} should map groups to descriptor lists.")
        for group, items in buckets.items():
            kept = 0
            for item in items if isinstance(items, list) else []:
                term = item.get("descriptor") if isinstance(item, dict) else item
                if not isinstance(term, str) or (isinstance(item, dict) and item.get("preference") == "dispreferred"):
                    continue
                out.append(Identity(_AXIS_NAMES[axis], group, term))
                kept += 1
                if kept >= per_group:
                    break
    if not out:
        raise DataError(f"{path}: no usable descriptors found (expected HolisticBias's descriptors.json).")
    return out
