"""Score sentiment classifiers on a labelled test file: accuracy, macro F1, calibration, confusions.

    appkit sentiment eval --data test.csv [--text-col ..] [--label-col ..] [--model A --model B]

The test file is read like a training file (same column and label rules) and its labels are
mapped the way the model's training data was (``0``/``1`` -> negative/positive ...). A
majority-class row is the floor a model must clear. Scoring a model on the very texts and
labels it was trained on is flagged in the notes: that is not a test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import DataError
from appkit.eval import EvalTable, fmt

if TYPE_CHECKING:
    from appkit.config import Settings

CHUNK = 512  # texts per progress update


def evaluate_sentiment(
    data: str | Path,
    models: Sequence[str | None],
    settings: Settings,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **_: Any,
) -> EvalTable:
    """Score each of ``models`` (names or directories; None = the active one) on ``data``'s labels.

    Raises:
        DataError: the file, its columns or labels cannot be read, or it has labels a model does not know.
        ModelError: a model cannot be found or loaded.
    """
    from apps.sentiment.analyzer import SentimentAnalyzer
    from apps.sentiment.data import read_labelled

    test = read_labelled(data, text_col=text_col, label_col=label_col, warn=lambda _: None)
    fingerprint = test.fingerprint()  # of the whole file: --limit does not make training data a test
    if limit is not None:
        test = test.subset(range(min(limit, len(test.texts))))
    raw_of = {name: raw for raw, name in test.renamed.items()}  # the test file's own values
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for model in models:
        analyzer = SentimentAnalyzer.open(model, settings=settings)
        trained_on = analyzer.metadata.get("data") or {}
        to_model = trained_on.get("renamed") or {}
        gold = [to_model.get(raw_of.get(label, label), raw_of.get(label, label)) for label in test.labels]
        unknown = sorted(set(gold) - set(analyzer.labels))
        if unknown:
            raise DataError(f"{data}: labels {', '.join(map(repr, unknown))} in column {test.label_col!r} are not among "
                            f"the labels of model {analyzer.name!r} ({', '.join(analyzer.labels)}).")
        results = []
        for start in range(0, len(test.texts), CHUNK):
            results += analyzer.analyze(test.texts[start:start + CHUNK], warn=False)
            if progress:
                progress(analyzer.name, len(results), len(test.texts))
        row = score(analyzer.labels, gold, [r.label for r in results],
                    [[r.probabilities[label] for label in analyzer.labels] for r in results])
        rows.append({"system": analyzer.name, **row})
        if trained_on.get("fingerprint") == fingerprint:
            notes.append(f"{analyzer.name}: {Path(str(data)).name} is the data this model was trained on; its scores "
                         "are not a test. Score a file it has not seen.")
        notes.append(confusions(analyzer.name, analyzer.labels, row["confusion"]))
    if rows:  # the floor: always answer the test set's most common label
        majority = Counter(gold).most_common(1)[0][0]
        rows.append({"system": f"majority class ({majority})",
                     **score(analyzer.labels, gold, [majority] * len(gold), None)})
    return _table(data, len(test.texts), rows, notes)


def score(labels: Sequence[str], gold: Sequence[str], predicted: Sequence[str],
          probabilities: Sequence[Sequence[float]] | None) -> dict[str, Any]:
    """Accuracy, macro F1, ECE (with probabilities) and the confusion counts [gold][predicted]."""
    from appkit.safety.metrics import macro_f1
    from apps.sentiment.calibration import expected_calibration_error

    y_true = [labels.index(g) for g in gold]
    y_pred = [labels.index(p) for p in predicted]
    confusion = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred):
        confusion[t][p] += 1
    n = len(y_true)
    return {
        "texts": n,
        "accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / n if n else 0.0,
        "macro_f1": macro_f1(y_true, y_pred, len(labels)),
        "ece": expected_calibration_error(probabilities, y_true) if probabilities is not None else None,
        "confusion": confusion,
    }


def confusions(name: str, labels: Sequence[str], confusion: Sequence[Sequence[int]]) -> str:
    """The confusion counts as a few readable lines: one per true label."""
    width = max(len(label) for label in labels)
    lines = [f"{name}: true label -> predicted ({', '.join(labels)})"]
    for label, counts in zip(labels, confusion):
        total = sum(counts) or 1
        cells = "  ".join(f"{c:>6,} ({100 * c / total:4.1f}%)" for c in counts)
        lines.append(f"  {label:<{width}}  {cells}")
    return "\n".join(lines)


def _table(data: str | Path, n: int, rows: list[dict[str, Any]], notes: list[str]) -> EvalTable:
    columns = ["system", "texts", "accuracy", "macro F1", "ECE"]
    formatted = [[r["system"], f"{r['texts']:,}", f"{r['accuracy']:.2%}", f"{r['macro_f1']:.4f}", fmt(r["ece"], ".4f")]
                 for r in rows]
    notes = [*notes, "ECE: expected calibration error of the predicted label's probability (0 = the probabilities "
             "can be taken at their word)."]
    return EvalTable(title=f"sentiment on {Path(str(data)).name} ({n:,} labelled texts)", columns=columns,
                     rows=formatted, data={"data": str(data), "rows": rows}, notes=notes)
