"""The linear member of the toxicity classifier: word and character n-grams, and the lexicon as evidence.

Features of a text (normalised by normalise.py first):
- word 1-2-grams and character 3-5-grams inside words, TF-IDF weighted (sublinear counts,
  rows of unit length). Character n-grams still match a word spelt to dodge a filter
  ("f*cking" shares "cking" with fucking) and words never seen whole; both are hashed, so no
  vocabulary is built or stored. Character bigrams were dropped: with them (2-5) out-of-domain
  ROC-AUC was the same or 0.0002 lower and scoring 40% slower (bench/safety_transfer.py sets);
- the lexicon's scores per label and its number of hits (lexicon.py, on the raw text, where it
  undoes leetspeak itself). A model trained on one corpus learns only that corpus's abuse:
  Davidson's tweets teach "bitch" and "hoe" but barely "idiot" or "moron" (weights 0.17 and
  0.13, where "bitch" has 12). As features beside the n-grams, the lexicon's judgement is
  learnt as one more piece of evidence, weighted by how well it agrees with the labels, and
  it carries to words the training data never had.
One logistic regression per label on top. It trains in seconds, so it needs no training loop.
Stored as one safetensors file (arrays, and how texts become features in its header).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appkit.errors import SafetyError
from appkit.safety.lexicon import LABELS as LEXICON_LABELS
from appkit.safety.normalise import VERSION as NORMALISE_VERSION
from appkit.safety.normalise import normalise

WEIGHTS_FILE = "ngrams.safetensors"
SPEC_KEY = "appkit"
# Features are hashed into this many columns; 2^18 word and 2^20 character n-gram columns leave
# few collisions on a corpus of Davidson's size (~150k distinct word 1-2-grams, ~400k char n-grams).
WORD_FEATURES = 2**18
CHAR_FEATURES = 2**20
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (3, 5)
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
REGULARISATION = 3.0  # sklearn's C (see ``fit``)
PROBE = "Probe: you f*cking id10t, 100% shit!!"  # hashed at save and at load: same columns or refused


@dataclass
class NgramModel:
    """Per-label logistic regressions over hashed TF-IDF n-grams and lexicon features."""

    labels: tuple[str, ...]
    weights: Any  # numpy float32 (L, WORD + CHAR + lexicon features)
    bias: Any  # numpy float32 (L,)
    word_idf: Any  # numpy float32 (WORD_FEATURES,)
    char_idf: Any  # numpy float32 (CHAR_FEATURES,)
    spec: dict[str, Any] = field(default_factory=dict)
    _columns: Any = field(default=None, repr=False, compare=False)

    # --- features ----------------------------------------------------------------------------

    def features(self, texts: Sequence[str]) -> Any:
        """Sparse (N, D) feature rows of raw ``texts``."""
        return _features(texts, self.word_idf, self.char_idf)

    def logits(self, texts: Sequence[str]) -> Any:
        """Logits per label, numpy float64 (N, L)."""
        import numpy as np

        if not len(texts):
            return np.zeros((0, len(self.labels)))
        if self._columns is None:  # (D, L), contiguous: a sparse row times it reads only the columns it has
            self._columns = np.ascontiguousarray(self.weights.T)
        return np.asarray(self.features(texts) @ self._columns, dtype=np.float64) + self.bias

    # --- training ----------------------------------------------------------------------------

    @classmethod
    def fit(cls, texts: Sequence[str], targets: Sequence[Sequence[float]], labels: Sequence[str], *,
            class_weights: Sequence[float] | None = None, seed: int = 0,
            log: Callable[[str], None] | None = None) -> NgramModel:
        """Fit on raw ``texts`` with targets in [0, 1] per label (>= 0.5 is positive).

        ``class_weights``: the weight of a positive example, per label (rare labels up-weighted).
        C = 3 (weak regularisation): in a sweep of 1, 3 and 10 on Davidson it was best, or within
        0.0003 ROC-AUC of the best, in-domain and on each out-of-domain set of bench/safety_transfer.py.
        """
        import numpy as np
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression

        word, char = _hashers()
        normal = [normalise(t) for t in texts]
        word_idf = TfidfTransformer(sublinear_tf=True).fit(word.transform(normal)).idf_.astype(np.float32)
        char_idf = TfidfTransformer(sublinear_tf=True).fit(char.transform(normal)).idf_.astype(np.float32)
        x = _features(texts, word_idf, char_idf, normal)
        # Only the columns some training text has can get a weight: fitting on those alone gives the
        # same model ~10x faster (L-BFGS's cost grows with the width: 1.3M hashed columns, 0.23M used).
        used = np.unique(x.indices)
        x = x[:, used]
        weights = np.zeros((len(labels), WORD_FEATURES + CHAR_FEATURES + len(LEXICON_LABELS) + 1), dtype=np.float32)
        bias = []
        for j, label in enumerate(labels):
            y = np.asarray([t[j] >= 0.5 for t in targets], dtype=int)
            w = 1.0 if class_weights is None else float(class_weights[j])
            lr = LogisticRegression(C=REGULARISATION, max_iter=3000, class_weight={0: 1.0, 1: w}, random_state=seed)
            lr.fit(x, y)
            weights[j, used] = lr.coef_[0]
            bias.append(lr.intercept_[0])
            if log:
                log(f"n-gram model: {label} fitted ({int(y.sum())} positive of {len(y)}, {lr.n_iter_[0]} iterations)")
        return cls(tuple(labels), weights, np.asarray(bias, dtype=np.float32), word_idf, char_idf, _spec())

    # --- storage -----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the arrays and the feature spec to ``directory``/ngrams.safetensors."""
        from safetensors.numpy import save_file

        spec = {**_spec(), "labels": list(self.labels), "probe": _probe()}
        save_file({"weights": self.weights, "bias": self.bias, "word_idf": self.word_idf, "char_idf": self.char_idf},
                  str(directory / WEIGHTS_FILE), metadata={SPEC_KEY: json.dumps(spec)})

    @classmethod
    def load(cls, directory: Path) -> NgramModel:
        """Read what ``save`` wrote.

        Raises:
            SafetyError: missing, damaged, or made with features this appkit computes differently.
        """
        from safetensors import SafetensorError, safe_open

        path = Path(directory) / WEIGHTS_FILE
        try:
            with safe_open(str(path), framework="numpy") as f:
                spec = json.loads((f.metadata() or {})[SPEC_KEY])
                arrays = {k: f.get_tensor(k) for k in f.keys()}
            model = cls(tuple(spec["labels"]), arrays["weights"], arrays["bias"], arrays["word_idf"],
                        arrays["char_idf"], spec)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
            raise SafetyError(f"{path}: the n-gram model cannot be read ({type(e).__name__}: {e}); train it again "
                              "(`appkit safety train`).") from None
        ours = {**_spec(), "probe": _probe()}
        changed = [k for k in ours if spec.get(k) != ours[k]]
        width = WORD_FEATURES + CHAR_FEATURES + len(LEXICON_LABELS) + 1
        if changed or model.weights.shape != (len(model.labels), width) or model.bias.shape != (len(model.labels),):
            raise SafetyError(f"{path}: made with other features ({', '.join(changed) or 'shape'} differ) than this "
                              "appkit computes; train it again (`appkit safety train`).")
        return model


# --- features ----------------------------------------------------------------------------------------


def _hashers() -> tuple[Any, Any]:
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer

    common = dict(alternate_sign=False, norm=None, lowercase=False, dtype=np.float32)
    word = HashingVectorizer(n_features=WORD_FEATURES, ngram_range=WORD_NGRAMS, token_pattern=TOKEN_PATTERN, **common)
    char_wb = HashingVectorizer(n_features=CHAR_FEATURES, ngram_range=CHAR_NGRAMS, analyzer="char_wb", **common)
    char = HashingVectorizer(n_features=CHAR_FEATURES, analyzer=_WordMemo(char_wb.build_analyzer()), **common)
    return word, char


class _WordMemo:
    """scikit-learn's char_wb analyzer, remembered per word.

    char_wb makes the n-grams of each whitespace-separated word (padded with spaces) on its own,
    so a text's n-grams are its words' n-grams in order: the same features, while each distinct
    word is cut into n-grams once (that cutting, in Python, was a quarter of scoring time).
    """

    LIMIT = 200_000  # words remembered (a bound on memory, not on correctness)

    def __init__(self, analyzer: Callable[[str], list[str]]) -> None:
        self.analyzer = analyzer
        self.seen: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for word in text.split():
            grams = self.seen.get(word)
            if grams is None:
                if len(self.seen) >= self.LIMIT:
                    self.seen.clear()
                grams = self.seen[word] = self.analyzer(word)
            out += grams
        return out


_HASHERS: tuple[Any, Any] | None = None


def _features(texts: Sequence[str], word_idf: Any, char_idf: Any, normal: Sequence[str] | None = None) -> Any:
    """[word TF-IDF | char TF-IDF | lexicon] for raw ``texts`` (``normal``: their normalised forms)."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    global _HASHERS
    if _HASHERS is None:
        _HASHERS = _hashers()
    normal = [normalise(t) for t in texts] if normal is None else normal
    blocks = []
    for hasher, idf in zip(_HASHERS, (word_idf, char_idf)):
        x = hasher.transform(normal).tocsr()
        x.data = (1.0 + np.log(x.data)) * idf[x.indices]  # sublinear TF times IDF, as TfidfTransformer does
        blocks.append(normalize(x, copy=False))
    blocks.append(sp.csr_matrix(lexicon_features(texts)))
    return sp.hstack(blocks, format="csr")


def lexicon_features(texts: Sequence[str]) -> Any:
    """The built-in lexicon's score per label and its hits (at most 3, scaled to 0..1), numpy (N, L + 1)."""
    import numpy as np

    from appkit.safety.lexicon import Lexicon

    lexicon = Lexicon.builtin()
    out = np.zeros((len(texts), len(LEXICON_LABELS) + 1), dtype=np.float32)
    for i, text in enumerate(texts):
        hits = lexicon.hits(text)
        if hits:
            scores = lexicon.score_hits(hits)
            out[i, :-1] = [scores[label] for label in LEXICON_LABELS]
            out[i, -1] = min(3, len(hits)) / 3
    return out


def _spec() -> dict[str, Any]:
    return {"normalise": NORMALISE_VERSION, "word_features": WORD_FEATURES, "char_features": CHAR_FEATURES,
            "word_ngrams": list(WORD_NGRAMS), "char_ngrams": list(CHAR_NGRAMS), "token_pattern": TOKEN_PATTERN,
            "lexicon_features": list(LEXICON_LABELS) + ["hits"]}


def _probe() -> list[int]:
    """Which columns the probe text lands in: a change in hashing would silently scramble a model."""
    import numpy as np

    x = _features([PROBE], np.ones(WORD_FEATURES, dtype=np.float32), np.ones(CHAR_FEATURES, dtype=np.float32))
    return sorted(int(i) for i in x.indices)[:64]

