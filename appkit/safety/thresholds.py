"""Policy thresholds chosen from labelled data (``appkit safety calibrate --data FILE --max-fpr 0.01``).

A threshold of 0.5 means different things for different models; what a team can state is how
many ordinary messages it is willing to have flagged. For each label of the file the active
backend scores, the lowest threshold at which at most ``max_fpr`` of the clean texts reach it
is found, and the policy's rules for that label (input and output) use it.

Stored in APPKIT_HOME/safety/thresholds.json with the backend they were measured on, and
applied only while that backend is active: thresholds of one model mean nothing for another.
Explicit thresholds in appkit.toml ([safety.policy.*]) still win over calibrated ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.safety.backends import ToxicityClassifier
    from appkit.safety.data import LabelledData

THRESHOLDS_FILE = "thresholds.json"


def thresholds_path(settings: Settings) -> Path:
    """APPKIT_HOME/safety/thresholds.json."""
    return settings.home / "safety" / THRESHOLDS_FILE


def threshold_for_fpr(scores: Sequence[float], toxic: Sequence[bool], max_fpr: float) -> dict[str, Any]:
    """The lowest threshold flagging at most ``max_fpr`` of the clean texts, with its FPR and recall.

    Candidates are the scores themselves (and 1.0): flagging means score >= threshold.
    """
    if not 0.0 <= max_fpr < 1.0:
        raise ConfigError(f"--max-fpr {max_fpr!r}: expected a rate from 0 to 1, e.g. 0.01 for 1%.")
    clean = sorted((s for s, t in zip(scores, toxic) if not t), reverse=True)
    positives = [s for s, t in zip(scores, toxic) if t]
    if not clean or not positives:
        raise DataError("calibration needs both clean and toxic texts.")
    allowed = int(max_fpr * len(clean) + 1e-9)  # this many clean texts may be flagged
    # Just above the (allowed+1)-th highest clean score, but never above a toxic score that is needlessly missed.
    limit = clean[allowed] if allowed < len(clean) else -1.0
    candidates = sorted({s for s in scores if s > limit} | {1.0})
    threshold = round(min(candidates), 6)
    fpr = sum(s >= threshold for s in clean) / len(clean)
    recall = sum(s >= threshold for s in positives) / len(positives)
    return {"threshold": threshold, "fpr": fpr, "recall": recall, "clean": len(clean), "toxic": len(positives)}


def calibrate_thresholds(classifier: ToxicityClassifier, data: LabelledData, max_fpr: float,
                         progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, Any]]:
    """``threshold_for_fpr`` for each label of ``data`` that ``classifier`` scores.

    Raises:
        ConfigError: ``max_fpr`` is not a rate (checked before scoring).
        DataError: the classifier scores none of the labels, or a label has one class only.
    """
    from appkit.safety.evaluate import score_all

    labels = [label for label in data.labels if label in classifier.labels]
    if not labels:
        raise DataError(f"{data.source}: its labels ({', '.join(data.labels)}) are none of those the active backend "
                        f"{classifier.name} scores ({', '.join(classifier.labels)}).")
    threshold_for_fpr([0.0, 1.0], [False, True], max_fpr)
    scores = score_all(classifier, data.texts, progress)
    found = {}
    for label in labels:
        j = data.labels.index(label)
        toxic = [t[j] >= 0.5 for t in data.targets]
        if all(toxic) or not any(toxic):
            raise DataError(f"{data.source}: every text is {'toxic' if any(toxic) else 'clean'} for {label!r}; "
                            "calibration needs both.")
        found[label] = threshold_for_fpr([s[label] for s in scores], toxic, max_fpr)
    return found


def save_thresholds(settings: Settings, backend: str, source: str, max_fpr: float,
                    found: dict[str, dict[str, Any]]) -> Path:
    """Write the calibrated thresholds for ``backend`` (replacing earlier ones)."""
    from appkit.files import write_json_atomic

    path = thresholds_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"backend": backend, "data": source, "max_fpr": max_fpr,
                             "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "labels": found})
    return path


def load_thresholds(settings: Settings) -> dict[str, Any]:
    """The stored calibration ({} if there is none).

    Raises:
        ConfigError: the file exists but is not a calibration appkit wrote.
    """
    path = thresholds_path(settings)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        for label, entry in data["labels"].items():
            if not 0.0 <= float(entry["threshold"]) <= 1.0:
                raise ValueError(f"threshold of {label!r} is {entry['threshold']!r}")
        str(data["backend"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: not a calibration written by `appkit safety calibrate` ({e}); calibrate again "
                          "or delete the file.") from None
    return data


def calibrated_thresholds(settings: Settings | None, backend: str) -> dict[str, float]:
    """Label -> threshold calibrated for ``backend`` ({} if none, or if calibrated for another backend)."""
    if settings is None:
        return {}
    data = load_thresholds(settings)
    if data.get("backend") != backend:
        return {}
    return {label: float(entry["threshold"]) for label, entry in data["labels"].items()}
