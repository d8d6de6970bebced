"""``appkit safety eval``: how well moderation works on the user's own labelled data.

For each classifier compared (the active backend, the lexicon, and any named on the command
line), on one label of the file (``toxicity`` unless chosen):
- ROC-AUC of its score: how well it ranks toxic above clean, whatever the threshold;
- precision, recall and F1 when flagging at the policy's threshold for that label (the input rule);
- the false-positive rate on the clean texts at that threshold, overall and per identity group
  (clean texts that mention a group's term, e.g. "gay", "Muslim": where a classifier trained on
  abusive data is most often wrong about ordinary people);
- texts per second, scored in batches.
The same table goes into ``appkit audit``'s report when it is given labelled data.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import DataError

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.eval import EvalTable
    from appkit.safety.backends import ToxicityClassifier
    from appkit.safety.data import LabelledData

MIN_GROUP = 5  # clean texts naming a group before its false-positive rate is shown
Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class BinaryData:
    """Texts and whether each is toxic for one label."""

    texts: list[str]
    toxic: list[bool]
    label: str
    source: str


def as_toxicity(data: LabelledData) -> LabelledData:
    """``data`` with a single label no backend knows (``is_abusive``) read as ``toxicity``: toxic or not."""
    from dataclasses import replace

    from appkit.safety.policy import available_labels

    if len(data.labels) == 1 and data.labels[0] not in available_labels():
        return replace(data, labels=("toxicity",))
    return data


def binary_view(data: LabelledData, label: str | None = None) -> BinaryData:
    """One label of ``data`` as toxic/clean (``toxicity`` if present, else the file's only label).

    Raises:
        DataError: ``label`` is not in the data, or the data has only one class.
    """
    if label is None:
        label = "toxicity" if "toxicity" in data.labels else data.labels[0]
    if label not in data.labels:
        raise DataError(f"{data.source}: no label {label!r}; labels found: {', '.join(data.labels)}.")
    j = data.labels.index(label)
    toxic = [t[j] >= 0.5 for t in data.targets]
    if all(toxic) or not any(toxic):
        raise DataError(f"{data.source}: every text is {'toxic' if any(toxic) else 'clean'} for {label!r}; "
                        "an evaluation needs both.")
    return BinaryData(list(data.texts), toxic, label, data.source)


def group_mentions(texts: Sequence[str]) -> dict[str, list[int]]:
    """Identity group ("religion/Muslim") -> indices of the texts that name it (whole words, any case)."""
    from appkit.safety.identity import BUILTIN

    out: dict[str, list[int]] = {}
    for ident in BUILTIN:
        pattern = re.compile(rf"\b{re.escape(ident.term)}s?\b", re.IGNORECASE)
        hits = [i for i, t in enumerate(texts) if pattern.search(t)]
        if hits:
            out[f"{ident.axis}/{ident.group}"] = hits
    return out


def score_all(classifier: ToxicityClassifier, texts: Sequence[str], progress: Progress | None = None,
              chunk: int = 1000) -> list[dict[str, float]]:
    """``classifier.score(texts)`` in batches of ``chunk``, reporting ``progress(name, done, total)``."""
    out: list[dict[str, float]] = []
    for start in range(0, len(texts), chunk):
        out += classifier.score(list(texts[start:start + chunk]))
        if progress is not None:
            progress(classifier.name, len(out), len(texts))
    return out


def measure(classifier: ToxicityClassifier, data: BinaryData, threshold: float,
            groups: dict[str, list[int]] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The figures of one classifier on ``data`` (see the module docstring); None where undefined."""
    from appkit.safety.metrics import binary_f1, roc_auc

    started = time.perf_counter()
    scores = score_all(classifier, data.texts, progress)
    seconds = time.perf_counter() - started
    if data.label not in classifier.labels:
        return {"backend": classifier.name, "label": data.label, "scored": False, "texts_per_second": None}
    s = [float(x[data.label]) for x in scores]
    flagged = [v >= threshold for v in s]
    clean = [i for i, t in enumerate(data.toxic) if not t]
    fpr = sum(flagged[i] for i in clean) / len(clean)
    per_group: dict[str, Any] = {}
    for group, idx in (groups if groups is not None else group_mentions(data.texts)).items():
        mine = [i for i in idx if not data.toxic[i]]
        if len(mine) >= MIN_GROUP:
            per_group[group] = {"clean": len(mine), "fpr": sum(flagged[i] for i in mine) / len(mine)}
    worst = max(per_group, key=lambda g: per_group[g]["fpr"], default=None)
    f1 = binary_f1(data.toxic, flagged)
    return {"backend": classifier.name, "label": data.label, "scored": True, "roc_auc": roc_auc(data.toxic, s),
            "threshold": threshold, **f1, "fpr": fpr, "groups": per_group, "worst_group": worst,
            "worst_group_fpr": per_group[worst]["fpr"] if worst else None,
            "texts_per_second": len(data.texts) / max(seconds, 1e-9), "scores": s}


def evaluate_classifiers(classifiers: Sequence[ToxicityClassifier], data: BinaryData, thresholds: dict[str, float],
                         progress: Progress | None = None) -> list[dict[str, Any]]:
    """``measure`` for each classifier, each at ``thresholds[its name]`` (the policy's, per backend)."""
    groups = group_mentions(data.texts)
    return [measure(c, data, thresholds.get(c.name, 0.5), groups, progress) for c in classifiers]


def policy_threshold(rules: dict[str, Sequence[Any]], label: str) -> float:
    """The input rule's threshold for ``label`` (the score at which the policy first acts), else 0.5."""
    return min((r.threshold for r in rules.get("input", ()) if r.label == label), default=0.5)


def eval_table(results: Sequence[dict[str, Any]], data: BinaryData) -> EvalTable:
    """The results as an EvalTable: one row per classifier, then a note per identity group."""
    from appkit.eval import EvalTable, fmt

    n_toxic = sum(data.toxic)
    table = EvalTable(f"{data.label} on {Path(data.source).name}: {len(data.texts):,} texts, {n_toxic:,} toxic "
                      "(flagged at the policy's threshold; FPR: share of clean texts flagged)",
                      ["classifier", "ROC-AUC", "threshold", "precision", "recall", "F1", "FPR",
                       "worst group", "texts/s"])
    for r in results:
        if not r["scored"]:
            table.rows.append([r["backend"], "no such label", *["-"] * 7])
            continue
        worst = f"{100 * r['worst_group_fpr']:.1f}% {r['worst_group'].split('/', 1)[-1]}" if r["worst_group"] else "-"
        table.rows.append([r["backend"], fmt(r["roc_auc"], ".3f"), f"{r['threshold']:.2f}", f"{r['precision']:.3f}",
                           f"{r['recall']:.3f}", f"{r['f1']:.3f}", f"{100 * r['fpr']:.1f}%", worst,
                           f"{r['texts_per_second']:,.0f}"])
    groups = sorted({g for r in results if r["scored"] for g in r["groups"]})
    for g in groups:
        cells = [f"{r['backend']} {100 * r['groups'][g]['fpr']:.1f}%" for r in results if g in r.get("groups", {})]
        n = next(r["groups"][g]["clean"] for r in results if g in r.get("groups", {}))
        table.notes.append(f"clean texts naming {g} ({n}): false positives " + ", ".join(cells))
    if not groups:
        table.notes.append(f"no identity group is named by {MIN_GROUP} or more clean texts, so none has its own "
                           "false-positive rate.")
    table.data = {"data": data.source, "texts": len(data.texts), "toxic": n_toxic, "label": data.label,
                  "results": [{k: v for k, v in r.items() if k != "scores"} for r in results]}
    return table


def markdown(table: EvalTable) -> list[str]:
    """The table as Markdown lines (for the audit report)."""
    lines = [f"| {' | '.join(table.columns)} |", "|" + "---|" * len(table.columns)]
    lines += [f"| {' | '.join(row)} |" for row in table.rows]
    return lines + [""] + [f"- {note}" for note in table.notes]


def evaluate_backends(settings: Settings, labelled: LabelledData, app: str, checkpoints: Sequence[Path] = (),
                      progress: Progress | None = None) -> EvalTable:
    """``appkit safety eval``: the active backend, the lexicon and ``checkpoints`` on ``labelled``, as a table."""
    from appkit.safety.backends import is_lexicon, load_trained_classifier, safety_config
    from appkit.safety.lexicon import LexiconClassifier
    from appkit.safety.policy import available_labels, load_policy, policy_rules

    view = binary_view(as_toxicity(labelled))
    policy = load_policy(app, settings)
    classifiers: list[Any] = [policy.classifier]
    if not is_lexicon(policy.backend):
        classifiers.append(LexiconClassifier())
    classifiers += [load_trained_classifier(path) for path in checkpoints]
    cfg = safety_config(settings)
    thresholds = {c.name: policy_threshold(policy_rules(app, cfg, available_labels(c)), view.label)
                  for c in classifiers}
    thresholds[policy.backend] = policy_threshold(policy.rules, view.label)  # with its calibrated thresholds
    return eval_table(evaluate_classifiers(classifiers, view, thresholds, progress), view)
