"""Labelled toxicity data: read it (CSV/TSV/JSONL/JSON), map its labels, split it.

Labels. Multi-label columns of 0/1 (or fractions of annotators, or true/false) are used as
they are, renamed the way detoxify renames them (toxic -> toxicity, identity_hate ->
identity_attack). Davidson et al.'s ``class`` column (0 hate, 1 offensive, 2 neither) becomes two
detoxify labels: ``toxicity`` = hate or offensive, ``identity_attack`` = hate (hate speech in
that data set is abuse aimed at a group), so one policy works for every backend.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appkit.errors import DataError

TEXT_COLUMNS = ("text", "comment_text", "tweet", "message", "content", "sentence", "comment", "body")
RENAME = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}
JIGSAW = ("toxic", "toxicity", "severe_toxic", "severe_toxicity", "obscene", "threat", "insult",
          "identity_hate", "identity_attack", "sexual_explicit")
DAVIDSON_LABELS = ("toxicity", "identity_attack")
_TRUE = {"true": 1.0, "yes": 1.0, "y": 1.0, "false": 0.0, "no": 0.0, "n": 0.0}


@dataclass
class LabelledData:
    """Texts and their multi-label targets in [0, 1]."""

    texts: list[str]
    targets: list[list[float]]
    labels: tuple[str, ...]
    scheme: str  # "davidson" or "multilabel"
    source: str
    classes: list[int] = field(default_factory=list)  # Davidson's 3-way class, when known
    skipped: int = 0



# --- data --------------------------------------------------------------------------------------


def read_labelled(path: str | Path, *, text_col: str | None = None, label_cols: Sequence[str] | None = None,
                  encoding: str = "utf-8") -> LabelledData:
    """Read a labelled toxicity file; Davidson's ``class`` column is recognised by itself.

    Raises:
        DataError: unreadable, empty, binary, a missing column (the columns found are listed),
            or a label value that is not 0..1 / true/false (file and line named).
    """
    from appkit.data.report import ReadReport
    from appkit.data.tables import cell, read_table

    path = Path(path).expanduser()
    table = read_table(path, encoding, ReadReport(str(path)))
    found = ", ".join(repr(c) for c in table.columns)
    if text_col is None:
        text_col = next((c for c in table.columns if c.lower() in TEXT_COLUMNS), None)
        if text_col is None:
            raise DataError(f"{path}: no text column found (looked for {', '.join(TEXT_COLUMNS)}); columns found: "
                            f"{found}. Name it with --text-col.")
    elif text_col not in table.columns:
        raise DataError(f"{path}: no column {text_col!r}; columns found: {found}.")
    lower = {c.lower(): c for c in table.columns}
    named_class = label_cols is not None and [c.lower() for c in label_cols] == ["class"]
    davidson = "class" in lower and (named_class or (not label_cols and (
        "hate_speech" in lower or "offensive_language" in lower)))
    if davidson:
        return _read_davidson(table, text_col, lower["class"], str(path))
    if not label_cols:
        label_cols = [lower[c] for c in JIGSAW if c in lower] or [lower[c] for c in ("label", "is_toxic") if c in lower]
        if not label_cols:
            raise DataError(f"{path}: no label columns found (looked for {', '.join(JIGSAW)}, label, class); columns "
                            f"found: {found}. Name them with --label-cols.")
    missing = [c for c in label_cols if c not in table.columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} for labels; columns found: {found}.")
    labels = tuple(RENAME.get(c.lower(), "toxicity" if c.lower() in ("label", "is_toxic") else c.lower())
                   for c in label_cols)
    texts, targets, skipped = [], [], 0
    for loc, record in table.records:
        text = cell(record.get(text_col)).strip()
        if not text:
            skipped += 1
            continue
        row = [_label_value(cell(record.get(c)), table.where(loc), c) for c in label_cols]
        texts.append(text)
        targets.append(row)
    if not texts:
        raise DataError(f"{path}: every row has an empty {text_col!r} column; nothing to train on.")
    return LabelledData(texts, targets, labels, "multilabel", str(path), skipped=skipped)


def _label_value(raw: str, where: str, column: str) -> float:
    value = raw.strip().lower()
    if value in _TRUE:
        return _TRUE[value]
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise DataError(f"{where}: column {column!r} is {raw!r}; expected a number from 0 to 1 or true/false.")
    return number


def _read_davidson(table: Any, text_col: str, class_col: str, source: str) -> LabelledData:
    from appkit.data.tables import cell

    texts, targets, classes, skipped = [], [], [], 0
    for loc, record in table.records:
        text = cell(record.get(text_col)).strip()
        raw = cell(record.get(class_col)).strip()
        if not text:
            skipped += 1
            continue
        if raw not in ("0", "1", "2"):
            raise DataError(f"{table.where(loc)}: column {class_col!r} is {raw!r}; expected 0 (hate speech), "
                            "1 (offensive) or 2 (neither) as in Davidson et al. 2017.")
        c = int(raw)
        texts.append(text)
        targets.append([1.0 if c in (0, 1) else 0.0, 1.0 if c == 0 else 0.0])
        classes.append(c)
    if not texts:
        raise DataError(f"{source}: every row has an empty {text_col!r} column; nothing to train on.")
    return LabelledData(texts, targets, DAVIDSON_LABELS, "davidson", source, classes, skipped)


def split_indices(n: int, fractions: Sequence[float], seed: int = 0) -> list[list[int]]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into parts of ``fractions`` (the rest is first)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    sizes = [int(round(n * f)) for f in fractions]
    parts, start = [], n - sum(sizes)
    parts.append(order[:start])
    for size in sizes:
        parts.append(order[start:start + size])
        start += size
    return parts


def holdout_split(texts: Sequence[str], fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, validation) indices: validation is the longest ``fraction / 2`` of texts and a random ``fraction / 2``.

    The long half is a style training never sees (a proxy for text from elsewhere); the random
    half keeps the split representative of the data itself.
    """
    n = len(texts)
    half = int(round(n * fraction / 2))
    longest = sorted(range(n), key=lambda i: (-len(texts[i]), i))[:half]
    rest = sorted(set(range(n)) - set(longest))
    keep, drawn = split_indices(len(rest), [half / max(1, len(rest))], seed=seed)
    return sorted(rest[i] for i in keep), sorted([*longest, *(rest[i] for i in drawn)])


def subset(data: LabelledData, idx: list[int]) -> LabelledData:
    """The rows ``idx`` of ``data``."""
    return LabelledData([data.texts[i] for i in idx], [data.targets[i] for i in idx], data.labels, data.scheme,
                        data.source, [data.classes[i] for i in idx] if data.classes else [])
