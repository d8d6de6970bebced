"""How far a period's customer messages are from what the model was trained on.

Three measures, each next to what it is on messages the model was validated on (never trained
on, so they show what "no drift" looks like for this model):

- **Nearest-case similarity**: for every message, the cosine similarity of its closest training
  message (TF-IDF over words and character 3-5-grams, as the support app retrieves past cases).
  The *unlike* level is the 5th percentile of the held-out messages' similarities: by
  construction about 5% of messages like the training data fall under it. The share of the
  period's messages under it is the **drift score**; ``[insights] drift_warning`` (default
  0.15, three times the expected share) raises the warning.
- **Unseen words**: the share of the period's words (letters only) that no training message has.
- **Topic mix**: the Jensen-Shannon distance (0 same, 1 disjoint) between the period's topic
  shares and the training data's (see appkit/insights/topics.py).

Without held-out messages the unlike level comes from training messages against the others
(leave one out, exact duplicates excluded), which is said in the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from appkit.insights.settings import DEFAULT_WARNING

EXPECTED_UNLIKE = 0.05  # the held-out quantile that sets the unlike level
CHUNK = 2048  # messages per similarity block: CHUNK x reference size floats at a time
_WORD = re.compile(r"[a-z]{2,}")


class Similarity:
    """Nearest reference text by TF-IDF over words (1-2-grams) and character 3-5-grams.

    The vocabulary is fitted on the reference *and* the texts to be compared (``others``): a word
    no training message has then counts against the similarity instead of being dropped. Fitted on
    the reference alone, "can I see the status of my newsletter subscription?" would look like a
    training message about the status of an order, its new words simply unseen.
    """

    def __init__(self, texts: Sequence[str], others: Sequence[str] = ()) -> None:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.texts = list(texts)
        self.words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True, dtype=np.float32)
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True,
                                     dtype=np.float32)
        vocabulary = [*self.texts, *others]
        self.words.fit(vocabulary)
        self.chars.fit(vocabulary)
        self.matrix = self.vectors(self.texts)

    def vectors(self, texts: Sequence[str]) -> Any:
        return self._join(self.words.transform(texts), self.chars.transform(texts))

    @staticmethod
    def _join(words: Any, chars: Any) -> Any:
        import scipy.sparse as sp

        return sp.hstack([words * math.sqrt(0.5), chars * math.sqrt(0.5)]).tocsr()

    def nearest(self, texts: Sequence[str], k: int = 1, *, exclude_self: bool = False) -> tuple[Any, Any]:
        """((n, k) similarities, (n, k) reference indices), closest first.

        ``exclude_self``: ``texts`` are the reference texts themselves (leave one out): a text's
        own row and its exact duplicates are skipped.
        """
        import numpy as np

        n, k = len(texts), max(1, min(k, len(self.texts)))
        sims = np.zeros((n, k), dtype=np.float32)
        idx = np.zeros((n, k), dtype=np.int64)
        if n == 0 or not self.texts:
            return sims, idx
        vectors = self.vectors(texts)
        for start in range(0, n, CHUNK):
            block = (vectors[start:start + CHUNK] @ self.matrix.T).toarray()  # (chunk, n_reference)
            if exclude_self:
                block[block > 0.9999] = -1.0  # the text itself and its exact copies
            top = np.argpartition(-block, kth=k - 1, axis=1)[:, :k]
            values = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-values, axis=1)
            idx[start:start + CHUNK] = np.take_along_axis(top, order, axis=1)
            sims[start:start + CHUNK] = np.take_along_axis(values, order, axis=1)
        return np.clip(sims, 0.0, 1.0), idx

    def vocabulary(self) -> set[str]:
        return {w for text in self.texts for w in _WORD.findall(text.lower())}


@dataclass
class Drift:
    """Drift figures of a period against a model's training data."""

    model: str
    messages: int  # period messages measured
    reference: int  # training messages compared against
    unlike_level: float  # similarity under which a message counts as unlike the training data
    calibration: str  # where the unlike level comes from
    score: float  # share of the period's messages under the unlike level
    expected: float  # that share on held-out messages (by construction ~5%)
    threshold: float
    similarity: dict[str, float]  # the period's quantiles (p5 ... p95)
    reference_similarity: dict[str, float]  # the held-out (or leave-one-out) quantiles
    unseen_words: float
    reference_unseen_words: float | None
    topic_shift: float | None = None
    histogram: dict[str, list[float]] = field(default_factory=dict)  # edges, period and reference shares

    @property
    def warning(self) -> bool:
        return self.score > self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warning": self.warning}


def quantiles(values: Any) -> dict[str, float]:
    import numpy as np

    if len(values) == 0:
        return {}
    points = np.percentile(np.asarray(values, dtype=float), [5, 25, 50, 75, 95])
    return {f"p{p}": round(float(v), 4) for p, v in zip((5, 25, 50, 75, 95), points)}


def unseen_share(texts: Sequence[str], vocabulary: set[str]) -> float | None:
    """Share of the words of ``texts`` that are not in ``vocabulary``."""
    total = unseen = 0
    for text in texts:
        for word in _WORD.findall(text.lower()):
            total += 1
            unseen += word not in vocabulary
    return unseen / total if total else None


def calibration_sims(similarity: Similarity, held_out: Sequence[str], *, limit: int = 2000,
                     seed: int = 0) -> tuple[Any, str]:
    """Nearest-case similarities of messages like the training data, and what they are."""
    import random

    if held_out:
        sample = list(held_out)
        if len(sample) > limit:
            sample = random.Random(seed).sample(sample, limit)
        return similarity.nearest(sample)[0][:, 0], f"{len(sample)} held-out messages the model was validated on"
    sample = similarity.texts
    if len(sample) > limit:
        sample = random.Random(seed).sample(sample, limit)
    return (similarity.nearest(sample, exclude_self=True)[0][:, 0],
            f"{len(sample)} training messages against the others (no held-out messages were found)")


def measure_drift(model: str, similarity: Similarity, period_sims: Any, period_texts: Sequence[str],
                  held_out: Sequence[str], *, threshold: float = DEFAULT_WARNING) -> Drift:
    """Drift of ``period_texts`` (whose nearest similarities are ``period_sims``) from the reference."""
    import numpy as np

    reference_sims, calibration = calibration_sims(similarity, held_out)
    level = float(np.percentile(reference_sims, EXPECTED_UNLIKE * 100)) if len(reference_sims) else 0.0
    period_sims = np.asarray(period_sims, dtype=float)
    edges = np.linspace(0.0, 1.0, 21)
    vocabulary = similarity.vocabulary()
    return Drift(
        model=model, messages=len(period_texts), reference=len(similarity.texts), unlike_level=round(level, 4),
        calibration=calibration,
        score=float((period_sims < level).mean()) if len(period_sims) else 0.0,
        expected=float((reference_sims < level).mean()) if len(reference_sims) else EXPECTED_UNLIKE,
        threshold=threshold, similarity=quantiles(period_sims), reference_similarity=quantiles(reference_sims),
        unseen_words=unseen_share(period_texts, vocabulary) or 0.0,
        reference_unseen_words=unseen_share(held_out, vocabulary) if held_out else None,
        histogram={"edges": edges.round(3).tolist(),
                   "period": _shares(period_sims, edges), "reference": _shares(reference_sims, edges)},
    )


def _shares(values: Any, edges: Any) -> list[float]:
    import numpy as np

    counts, _ = np.histogram(values, bins=edges)
    return (counts / max(len(values), 1)).round(4).tolist()


def js_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """Jensen-Shannon distance (base 2: 0 = the same mix, 1 = nothing in common) of two distributions."""
    keys = set(p) | set(q)
    sp, sq = sum(p.values()) or 1.0, sum(q.values()) or 1.0
    total = 0.0
    for k in keys:
        a, b = p.get(k, 0.0) / sp, q.get(k, 0.0) / sq
        m = (a + b) / 2
        total += (a * math.log2(a / m) if a > 0 else 0.0) + (b * math.log2(b / m) if b > 0 else 0.0)
    return math.sqrt(max(total / 2, 0.0))
