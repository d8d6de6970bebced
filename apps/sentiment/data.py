"""Labelled texts for training: read a CSV/TSV/JSONL/JSON file, find its columns, check its labels."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appkit.errors import DataError
from apps.sentiment.labels import canonical, name_labels, order_labels

TEXT_COLUMNS = ("text", "sentence", "content", "review", "review_text", "comment", "message", "body", "tweet")
LABEL_COLUMNS = ("label", "sentiment", "polarity", "rating", "stars", "score", "class", "target")
MAX_LABELS = 50  # more distinct values than this is a text or id column named by mistake


@dataclass
class LabelledTexts:
    """Texts and their labels (as the model will predict them), in file order."""

    texts: list[str]
    labels: list[str]
    classes: tuple[str, ...]
    source: str
    text_col: str = ""
    label_col: str = ""
    renamed: dict[str, str] = field(default_factory=dict)  # raw value -> label, where they differ
    skipped: int = 0

    def counts(self) -> Counter[str]:
        """Rows per label."""
        return Counter(self.labels)

    def fingerprint(self) -> str:
        """A short hash of the texts and labels (same data, same fingerprint)."""
        h = hashlib.sha256()
        for text, label in zip(self.texts, self.labels):
            h.update(f"{label}\x00{text}\x01".encode())
        return h.hexdigest()[:16]

    def subset(self, idx: Sequence[int]) -> LabelledTexts:
        """The rows ``idx``, same classes."""
        return LabelledTexts([self.texts[i] for i in idx], [self.labels[i] for i in idx], self.classes, self.source,
                             self.text_col, self.label_col, self.renamed)


def pick_column(columns: Sequence[str], wanted: str | None, defaults: Sequence[str], path: Path, what: str,
                flag: str) -> str:
    """The column named ``wanted``, else the first of ``defaults`` present (any case).

    Raises:
        DataError: the column is not there; the message lists the columns found.
    """
    found = ", ".join(repr(c) for c in columns) or "none"
    if wanted is not None:
        if wanted in columns:
            return wanted
        by_case = [c for c in columns if c.lower() == wanted.lower()]
        if len(by_case) == 1:
            return by_case[0]
        raise DataError(f"{path}: no column {wanted!r}; columns found: {found}.")
    lower = {c.lower(): c for c in columns}
    for name in defaults:
        if name in lower:
            return lower[name]
    raise DataError(f"{path}: no {what} column found (looked for {', '.join(defaults)}); columns found: {found}. "
                    f"Name it with {flag}.")


def read_labelled(path: str | Path, *, text_col: str | None = None, label_col: str | None = None,
                  encoding: str = "utf-8", warn: Callable[[str], None] = print) -> LabelledTexts:
    """Read labelled texts; rows with an empty text or label are skipped (and reported).

    Raises:
        DataError: unreadable or empty file, a missing column (columns found are listed), a label
            column with one value only, or one with so many values it cannot be a label.
    """
    from appkit.data.report import ReadReport
    from appkit.data.tables import cell, read_table

    path = Path(path).expanduser()
    table = read_table(path, encoding, ReadReport(str(path)))
    text_col = pick_column(table.columns, text_col, TEXT_COLUMNS, path, "text", "--text-col")
    label_col = pick_column(table.columns, label_col, LABEL_COLUMNS, path, "label", "--label-col")
    if text_col == label_col:
        raise DataError(f"{path}: the text and the label are the same column {text_col!r}; name both with "
                        "--text-col and --label-col.")
    texts, raw, empty = [], [], []
    for loc, record in table.records:
        text, value = cell(record.get(text_col)).strip(), canonical(cell(record.get(label_col)))
        if not text or not value:
            empty.append(table.where(loc))
            continue
        texts.append(text)
        raw.append(value)
    if empty:
        warn(f"warning: {len(empty)} rows with an empty {text_col!r} or {label_col!r} skipped (first: {empty[0]}).")
    if not texts:
        raise DataError(f"{path}: no row has both a {text_col!r} text and a {label_col!r} label; nothing to train on.")
    seen = Counter(raw)
    if len(seen) == 1:
        only = next(iter(seen))
        raise DataError(f"{path}: column {label_col!r} has the single value {only!r} in all {len(raw)} rows; a "
                        "classifier needs examples of at least two labels.")
    if len(seen) > MAX_LABELS:
        examples = ", ".join(repr(v) for v, _ in seen.most_common(3))
        raise DataError(f"{path}: column {label_col!r} has {len(seen)} different values (e.g. {examples}); that looks "
                        f"like text, not labels (at most {MAX_LABELS}). Name the label column with --label-col.")
    names = name_labels(seen)
    labels = [names[v] for v in raw]
    return LabelledTexts(texts, labels, tuple(order_labels(names.values())), str(path), text_col, label_col,
                         {k: v for k, v in names.items() if k != v}, skipped=len(empty))


def split(data: LabelledTexts, val_fraction: float, seed: int, max_val: int = 5000) -> tuple[LabelledTexts, LabelledTexts]:
    """(train, validation), stratified by label so every label is in both where it has 2+ rows."""
    import random

    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    n_val_total = min(max_val, max(len(data.classes), round(len(data.texts) * val_fraction)))
    train_idx, val_idx = [], []
    for label, idx in sorted(by_label.items()):
        rng.shuffle(idx)
        k = round(len(idx) * n_val_total / len(data.texts))
        k = min(len(idx) - 1, max(1 if len(idx) > 1 else 0, k))  # one row stays in training
        val_idx += idx[:k]
        train_idx += idx[k:]
    return data.subset(sorted(train_idx)), data.subset(sorted(val_idx))
