"""In-domain non-toxic examples: what customers and agents ordinarily say, for toxicity training.

A classifier trained on public toxicity data alone learns that data's world: 83% of Davidson's
tweets are offensive, so to it anything unlike a tweet looks suspicious (measured: ordinary
support replies such as "It should arrive within 3 business days." scored toxicity 0.84).
Adding ordinary support sentences as non-toxic examples teaches it what normal traffic is;
frustration ("this is really disappointing") is ordinary too, and is labelled so.

``support_sentences()`` generates them from templates (no data files); ``texts_from_history``
adds a team's own tickets (``appkit safety train --neutral tickets.csv``), turns the lexicon
scores as toxic left out.
"""

from __future__ import annotations

import random
from pathlib import Path

_ITEMS = ("order", "package", "parcel", "blender", "jacket", "phone case", "headphones", "coffee maker", "laptop bag",
          "running shoes", "gift card", "subscription", "desk lamp", "vacuum cleaner", "backpack", "watch", "printer")
_PLACES = ("Canada", "Germany", "the UK", "Australia", "Texas", "my office", "a PO box", "Mexico", "Ireland")
_CUSTOMER = (
    "where is my {item}", "my {item} hasn't arrived yet", "I want to return the {item}", "can I get a refund for the {item}",
    "I was charged twice for my {item}", "how do I reset my password", "I can't log in to my account",
    "please cancel my subscription", "the {item} arrived damaged", "can I change my delivery address",
    "do you ship to {place}", "when will the {item} be back in stock", "the discount code doesn't work",
    "I need an invoice for order {num}", "my card was declined", "the app keeps crashing when I pay",
    "the tracking number doesn't work", "I ordered the wrong size", "can I speak to a manager",
    "this is really frustrating, I've been waiting {n} days", "I'm very disappointed with the service",
    "why is my {item} taking so long", "I never received a confirmation email", "is there a warranty on the {item}",
    "you sent me the wrong {item}", "the {item} stopped working after {n} days", "how much is shipping to {place}",
    "I'd like to upgrade my plan", "I want to close my account", "nobody has answered my emails",
    "the {item} is missing a part", "can I pay with PayPal", "your website is down again",
)
_AGENT = (
    "your {item} shipped yesterday and should arrive within {n} business days",
    "I've issued a refund of ${amt} to your card", "you can reset your password from the sign-in page",
    "I've updated your delivery address", "your subscription has been cancelled",
    "I'm sorry the {item} arrived damaged; a replacement is on its way", "I've passed this to our billing team",
    "the {item} will be back in stock next week", "I've attached your invoice for order {num}",
    "we do ship to {place}; it takes about {n} days", "I've sent a prepaid return label to your email",
    "I understand how frustrating this is", "I'm sorry for the delay", "your account has been unlocked",
    "the charge of ${amt} was a temporary hold and will disappear in {n} days",
    "could you send me your order number", "I've applied a discount of ${amt} to your next order",
    "a member of our team will call you within {n} hours", "the warranty covers the {item} for {n} years",
    "please try clearing your browser cache and signing in again", "I've escalated this to a manager",
)
_OPENERS = ("", "Hi, ", "Hello, ", "Hey, ", "Good morning, ", "Thanks for waiting. ", "Sorry to hear that. ")
_ENDINGS = ("", ".", "?", "!", ". Thanks!", " please.", ". Can you help?", " asap.", " Thank you.")


def support_sentences(n: int = 1500, seed: int = 0) -> list[str]:
    """``n`` distinct ordinary customer and agent sentences, generated deterministically."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    for _ in range(n * 20):
        template = rng.choice(_CUSTOMER + _AGENT)
        body = template.format(item=rng.choice(_ITEMS), place=rng.choice(_PLACES), n=rng.randint(2, 14),
                               num=rng.randint(10_000, 99_999), amt=f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}")
        text = rng.choice(_OPENERS) + (body if rng.random() < 0.5 else body[0].upper() + body[1:]) + rng.choice(_ENDINGS)
        out.setdefault(text.strip(), None)
        if len(out) >= n:
            break
    return list(out)


def texts_from_history(path: str | Path, *, limit: int = 5000, seed: int = 0) -> list[str]:
    """Turns of a support history file (any shape ``read_history`` reads) the lexicon finds clean.

    Raises:
        DataError: the file cannot be read as a history.
    """
    from appkit.data import read_history
    from appkit.safety.lexicon import Lexicon

    lexicon = Lexicon.builtin()
    texts = list(dict.fromkeys(t.text for c in read_history(path) for t in c.turns if t.text.strip()))
    clean = [t for t in texts if lexicon.scores(t)["toxicity"] < 0.5]
    random.Random(seed).shuffle(clean)
    return clean[:limit]
