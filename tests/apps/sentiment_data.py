"""Generated labelled sentences for the sentiment tests: clear positive, negative and neutral words."""

from __future__ import annotations

import csv
import random
from pathlib import Path

POSITIVE = ["great", "excellent", "wonderful", "lovely", "fantastic", "amazing", "delightful", "superb"]
NEGATIVE = ["terrible", "awful", "horrible", "dreadful", "useless", "broken", "disappointing", "rude"]
NEUTRAL = ["ordinary", "average", "standard", "usual", "regular", "typical", "plain", "normal"]
SUBJECTS = ["the delivery", "the service", "this product", "the support team", "my order", "the app", "the refund",
            "the packaging", "the price", "the staff"]
TEMPLATES = ["{s} was {w}", "honestly {s} is {w}", "i think {s} was {w} today", "{s} felt {w} to me",
             "well , {s} is {w}", "overall {s} seemed {w}"]
WORDS = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}


def sentences(n: int, seed: int = 0, labels: tuple[str, ...] = ("negative", "neutral", "positive")) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs cycling through ``labels``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = labels[i % len(labels)]
        text = rng.choice(TEMPLATES).format(s=rng.choice(SUBJECTS), w=rng.choice(WORDS[label]))
        out.append((text, label))
    return out


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label"),
              delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path
