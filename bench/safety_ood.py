"""Out-of-domain toxicity test sets built from ../shared/data, for bench/safety_transfer.py.

There is no second labelled toxicity data set in ../shared/data, so the test is assembled from
what exists, none of it ever trained on:

- ``long tweets``: Davidson tweets longer than LONG_TWEET characters, held out of training by
  length (a style the classifier sees no example of: the longest fifth of a short-text corpus);
- ``rewrites``: clean sentences of other styles (BOLD's Wikipedia sentence openings,
  CrowS-Pairs sentences, HolisticBias self-descriptions from templates that identity
  mitigation never trains on) against toxic rewrites of other such sentences, made from the
  templates below with insults and slurs from appkit's lexicon, some spelt to dodge a filter
  ("id10t", "f*cking"); plus paragraphs of 3-6 such sentences, the toxic ones hiding one
  rewrite (long comments, where a bag of n-grams is diluted and a short-input model
  truncates). The toxic side is the lexicon's by construction, so this set flatters it;
- ``tweets in prose``: each held-out long tweet inside 2-5 clean sentences of those other
  styles, keeping the tweet's human label: abuse people labelled, in a context unlike Twitter.

The rewrite templates live only here: appkit's training augmentation (appkit/safety/augment.py)
writes its own, and the tests check that no template is shared.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LONG_TWEET = 140  # characters; 2,292 of Davidson's 24,783 tweets (24% of them clean)
CONTENT_WARNING = "these sets contain slurs and insults by design"


@dataclass
class TestSet:
    """Texts with binary toxic labels."""

    name: str
    texts: list[str]
    labels: list[int]


def split_long(texts: list[str], long: int = LONG_TWEET) -> tuple[list[int], list[int]]:
    """Indices of texts up to ``long`` characters (for training) and longer (held out)."""
    short = [i for i, t in enumerate(texts) if len(t) <= long]
    held = [i for i, t in enumerate(texts) if len(t) > long]
    return short, held


# --- clean text of other styles -------------------------------------------------------------------


def bold_sentences(folder: Path) -> list[str]:
    """BOLD's prompts (openings of Wikipedia sentences), one text each, deduplicated."""
    out: dict[str, None] = {}
    for path in sorted(folder.glob("*_prompt.json")):
        for people in json.loads(path.read_text(encoding="utf-8")).values():
            for prompts in people.values():
                for prompt in prompts:
                    text = " ".join(prompt.split())
                    if len(text) >= 20:
                        out.setdefault(text, None)
    return list(out)


def crows_sentences(path: Path, is_abusive: Callable[[str], bool]) -> list[str]:
    """Both sentences of every CrowS-Pairs pair, less the few that are abuse, not stereotype.

    21 of 3,016 hold a slur or an insult ("filthy chinks", "damn retards"); they are not clean
    text, so they are left out (``is_abusive``: the lexicon, with severity >= 0.5).
    """
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = dict.fromkeys(" ".join(r[k].split()) for r in rows for k in ("sent_more", "sent_less"))
    return [t for t in texts if t and not is_abusive(t)]


def holistic_sentences(folder: Path, skip_templates: set[str], limit: int, seed: int) -> list[str]:
    """HolisticBias self-descriptions: its templates x reviewed descriptors x nouns.

    Templates appkit trains on (identity mitigation) and the judgemental ones ("I hate ...",
    "... are the worst") are left out; dispreferred descriptors (slurs among them) too.
    """
    templates = json.loads((folder / "sentence_templates.json").read_text(encoding="utf-8"))
    descriptors = json.loads((folder / "descriptors.json").read_text(encoding="utf-8"))
    nouns = json.loads((folder / "nouns.json").read_text(encoding="utf-8"))
    skip = {_template_key(t) for t in skip_templates}
    judgemental = re.compile(r"hate|don't like|worst|best|I like|I love \{plural")
    usable = [t for t in templates if _template_key(t) not in skip and not judgemental.search(t)]
    words: list[str] = []
    for buckets in descriptors.values():
        for items in (buckets.values() if isinstance(buckets, dict) else [buckets]):
            for item in items:
                term = item.get("descriptor") if isinstance(item, dict) else item
                if isinstance(term, str) and not (isinstance(item, dict) and item.get("preference") == "dispreferred"):
                    words.append(term)
    pairs = [p for group in nouns.values() for p in group]
    rng = random.Random(seed)
    out: dict[str, None] = {}
    for _ in range(limit * 20):
        template = rng.choice(usable)
        word = rng.choice(words)
        singular, plural = rng.choice(pairs)
        np_ = f"{_article(word)} {word} {singular}"
        out.setdefault(template.format(noun_phrase=np_, plural_noun_phrase=f"{word} {plural}"), None)
        if len(out) >= limit:
            break
    return list(out)


def _template_key(template: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "{}", template)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# --- toxic rewrites ---------------------------------------------------------------------------------

# {s} a clean sentence; {insult} a noun ("idiot"); {slur} an identity slur; {obscene} profanity.
REWRITES: tuple[str, ...] = (
    "{s} What a {insult}.",
    "{s} Only a {insult} would believe that.",
    "Shut up, you {insult}. {s}",
    "{s} You are a {adj} {insult}.",
    "Get lost, {insult}. {s}",
    "{s} Typical {slur}.",
    "{s} I hope you die, {insult}.",
    "{s} This is {obscene} and you know it.",
    "Nobody cares, {insult}. {s}",
    "{s} Go back where you came from, {slur}.",
    "{s} Keep your {slur} friends away from here.",
    "Read it again, {insult}: {s}",
    "{s} Seriously, what kind of {insult} writes this {obscene}?",
    "{s} Every {slur} I know is like that.",
    "Oh look, another {insult}. {s}",
    "{s} {obscene_cap}. Stop posting, {insult}.",
)
ADJECTIVES = ("stupid", "fucking", "pathetic", "worthless", "filthy", "useless", "brainless")


_NOT_NOUNS = {"stfu", "gtfo", "wtf", "omfg", "retarded", "spastic", "bitchy", "shitty", "apeshit"}


def lexicon_terms(min_severity: float = 0.75) -> dict[str, list[str]]:
    """Words of appkit's lexicon by role: insults, slurs, profanity (clear-cut ones only)."""
    from appkit.safety.wordlist import IDENTITY, INSULT, OBSCENE, TERMS

    roles = {"insult": INSULT, "slur": IDENTITY, "obscene": OBSCENE}
    out: dict[str, list[str]] = {}
    for role, label in roles.items():
        out[role] = [t for t, lab, sev, _ in TERMS if lab == label and sev >= min_severity and t not in _NOT_NOUNS]
    out["obscene"] = [t for t in out["obscene"] if t not in ("cock", "cocks", "dick", "dicks", "tits", "jizz")]
    return out


def obfuscate(word: str, rng: random.Random) -> str:
    """One of the spellings people use to get past a filter."""
    how = rng.randrange(4)
    vowels = [i for i, c in enumerate(word) if c in "aeiou"]
    if how == 0 and vowels:  # f*ck
        i = rng.choice(vowels)
        return word[:i] + "*" + word[i + 1:]
    if how == 1:  # id10t
        table = str.maketrans({"i": "1", "o": "0", "e": "3", "a": "@", "s": "$"})
        return word.translate(table)
    if how == 2:  # f.u.c.k
        return ".".join(word)
    return word[0] + word[1:].replace(word[1], word[1] * 3, 1) if len(word) > 2 else word  # fuuuck


def rewrite(sentence: str, rng: random.Random, terms: dict[str, list[str]], obfuscated: float = 0.25) -> str:
    """``sentence`` with abuse added by one of REWRITES (a quarter of the words obfuscated)."""
    def pick(role: str) -> str:
        word = rng.choice(terms[role])
        return obfuscate(word, rng) if rng.random() < obfuscated else word

    obscene = pick("obscene")
    return rng.choice(REWRITES).format(s=sentence.strip(), insult=pick("insult"), slur=pick("slur"),
                                       obscene=obscene, obscene_cap=obscene.capitalize(), adj=rng.choice(ADJECTIVES))


# --- the sets ------------------------------------------------------------------------------------------


def other_style_sets(shared: Path, tweets: TestSet, *, sentences: int = 3000, paragraphs: int = 1000,
                     seed: int = 0) -> list[TestSet]:
    """The ``rewrites`` and ``tweets in prose`` sets (see the module docstring)."""
    from appkit.safety.identity import TRAIN_TEMPLATES
    from appkit.safety.lexicon import Lexicon

    lexicon = Lexicon.builtin()
    rng = random.Random(seed)
    bold = bold_sentences(shared / "bias" / "bold")
    crows = crows_sentences(shared / "bias" / "crows_pairs" / "crows_pairs_anonymized.csv",
                            lambda t: lexicon.scores(t)["toxicity"] >= 0.5)
    holistic = holistic_sentences(shared / "bias" / "holistic_bias", set(TRAIN_TEMPLATES), 4000, seed)
    for pool in (bold, crows, holistic):
        rng.shuffle(pool)
    # A third of the clean sentences from each source; toxic ones are rewrites of other sentences.
    third = sentences // 6
    clean = [s for p in (bold, crows, holistic) for s in p[:third]]
    rest = [s for p in (bold, crows, holistic) for s in p[third:]]
    rng.shuffle(rest)
    terms = lexicon_terms()
    toxic = [rewrite(s, rng, terms) for s in rest[:len(clean)]]
    filler = rest[len(clean):]

    def prose(n: int) -> list[str]:
        return [filler[rng.randrange(len(filler))].strip() for _ in range(n)]

    texts, labels = clean + toxic, [0] * len(clean) + [1] * len(toxic)
    for k in range(paragraphs):
        parts = prose(rng.randint(3, 6))
        if k % 2:
            i = rng.randrange(len(parts))
            parts[i] = rewrite(parts[i], rng, terms)
        texts.append(" ".join(parts))
        labels.append(k % 2)
    in_prose = []
    for tweet in tweets.texts:
        parts = prose(rng.randint(2, 5))
        parts.insert(rng.randrange(len(parts) + 1), tweet)
        in_prose.append(" ".join(parts))
    return [TestSet("rewrites", texts, labels), TestSet("tweets in prose", in_prose, list(tweets.labels))]
