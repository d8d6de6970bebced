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


MAX_SPAN_WORDS = 80  # texts longer than this are never searched for contained texts (cost grows as words^2)


def containment_groups(texts: Sequence[str]) -> list[int]:
    """For each text, the index of the longest text that contains it word for word (itself if none).

    Phrase-level data sets (SST: 67k phrases cut from 7k sentences, each phrase labelled) put
    a sentence's phrases beside the sentence. A random split then validates on phrases whose
    sentence was trained on: validation accuracy reads far above the accuracy on unseen
    sentences, and a calibration fitted there makes it worse (bench/README.md). Grouping keeps a
    sentence and its phrases on one side. Only spans that are themselves texts are looked up,
    so memory stays at the size of the data; ordinary data (no text inside another) is one
    group per text.
    """
    norm = [" ".join(t.lower().split()) for t in texts]
    where: dict[str, list[int]] = {}
    for i, t in enumerate(norm):
        where.setdefault(t, []).append(i)
    group = [-1] * len(texts)
    for i in sorted(range(len(texts)), key=lambda k: -len(norm[k])):
        if group[i] != -1:
            continue
        group[i] = i
        words = norm[i].split()
        if len(words) > MAX_SPAN_WORDS:
            continue
        for a in range(len(words)):
            for b in range(a + 1, len(words) + 1):
                for j in where.get(" ".join(words[a:b]), ()):
                    if group[j] == -1:
                        group[j] = i
    return group


def split(data: LabelledTexts, val_fraction: float, seed: int, max_val: int = 5000) -> tuple[LabelledTexts, LabelledTexts]:
    """(train, validation): validation holds whole texts, stratified by label.

    Texts are grouped by containment (``containment_groups``); validation takes whole groups'
    top texts (``val_fraction`` of the groups, at most ``max_val``), and the rest of a
    validation group is used for neither side: training on it would leak the answer, and
    validation should measure whole texts, as they arrive in use.
    """
    import random

    group = containment_groups(data.texts)
    roots: dict[str, list[int]] = {}
    for i, g in enumerate(group):
        if g == i:
            roots.setdefault(data.labels[i], []).append(i)
    n_roots = sum(len(r) for r in roots.values())
    n_val = min(max_val, max(len(roots), round(n_roots * val_fraction)))
    rng = random.Random(seed)
    val_roots: set[int] = set()
    for label, idx in sorted(roots.items()):
        rng.shuffle(idx)
        k = min(len(idx) - 1, max(1 if len(idx) > 1 else 0, round(len(idx) * n_val / n_roots)))  # one stays in training
        val_roots.update(idx[:k])
    train_idx = [i for i in range(len(group)) if group[i] not in val_roots]
    return data.subset(train_idx), data.subset(sorted(val_roots))
