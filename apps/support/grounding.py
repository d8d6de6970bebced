"""Grounded replies: candidates from past cases, chosen with the model's judgement.

For each customer turn the bot gathers candidate replies: the replies of the closest past cases,
a few from each of the reply groups the close cases vote for (so one wrong neighbour cannot
crowd out the answer most close cases agree on). Each candidate is then described by

- ``similarity``: how close its case's customer message is to this one (TF-IDF, see cases.py);
- ``agreement``: the share of the close cases whose reply is in the candidate's group;
- ``fit``: our model's mean log P(reply | this conversation) per token;
- ``pmi``: ``fit`` minus the reply's prior, log P(reply | a conversation saying nothing): a
  reply that is likely anywhere ("Is there anything else?") gains nothing from being likely here.

A logistic regression over these, fitted after training on the validation conversations (how
often a candidate in the reference reply's group won), turns them into one probability; the
highest wins. All candidates of a turn are scored by the model in one batched pass over a
shared prompt (appkit.engine.scoring). When even the best candidate is unlikely to fit, the
model writes its own reply (``grounded`` mode); ``select`` never generates; ``generate`` only does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apps.support.cases import CaseIndex, Neighbour, query_of

REPLY_MODES = ("grounded", "select", "generate")
GROUNDING_FILE = "grounding.json"
FEATURES = ("similarity", "agreement", "fit", "pmi")
RETRIEVAL_FEATURES = ("similarity", "agreement")


@dataclass
class Candidate:
    """A possible reply and the evidence for it."""

    text: str
    source: str  # "case" (a past reply) or "generated" (our model's own)
    case: int | None = None  # index in the CaseIndex
    conversation_id: str = ""  # where the case came from
    group: int = -1
    similarity: float = 0.0
    agreement: float = 0.0
    fit: float | None = None
    pmi: float | None = None
    score: float = 0.0  # the combined probability that this reply fits

    def features(self, names: Sequence[str] = FEATURES) -> list[float]:
        values = {"similarity": self.similarity, "agreement": math.log(max(self.agreement, 1e-3)),
                  "fit": self.fit or 0.0, "pmi": self.pmi or 0.0}
        return [values[n] for n in names]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.text[:80]
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


@dataclass
class Weights:
    """How the evidence is combined: a logistic regression over ``features``."""

    features: tuple[str, ...] = RETRIEVAL_FEATURES
    coef: tuple[float, ...] = (4.0, 1.0)
    intercept: float = -2.0
    generate_below: float = 0.0  # grounded mode generates when the best candidate scores lower
    fitted_on: int = 0  # validation exchanges behind the weights (0: the defaults above)

    def score(self, candidate: Candidate) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coef, candidate.features(self.features)))
        return 1 / (1 + math.exp(-max(min(z, 30.0), -30.0)))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Weights:
        return cls(tuple(data["features"]), tuple(data["coef"]), float(data["intercept"]),
                   float(data.get("generate_below", 0.0)), int(data.get("fitted_on", 0)))

    @classmethod
    def load(cls, model_dir: Path, which: str = "model") -> Weights:
        """The weights saved with a model: ``model`` (all evidence) or ``retrieval`` (retrieval alone)."""
        path = Path(model_dir) / GROUNDING_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls.from_dict(data[which]) if which in data else cls()


def save_weights(model_dir: Path, **sets: Weights) -> None:
    """Save named weight sets (``model=``, ``retrieval=``) beside a model."""
    from appkit.files import write_json_atomic

    write_json_atomic(Path(model_dir) / GROUNDING_FILE, {name: w.as_dict() for name, w in sets.items()})


@dataclass
class Grounding:
    """What the bot chose for one turn, and why (stored with the reply)."""

    mode: str
    chosen: Candidate
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        return self.chosen.score

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.chosen.source, "case": self.chosen.case,
                "case_conversation": self.chosen.conversation_id, "score": round(self.chosen.score, 4),
                "candidates": [c.as_dict() for c in self.candidates]}


# (prompt messages, reply texts) -> (mean log-probability per token of each reply)
Scorer = Callable[[Sequence[dict[str, str]], Sequence[str]], list[float]]


class Grounder:
    """Gathers candidates from the case index and ranks them."""

    def __init__(self, index: CaseIndex, weights: Weights | None = None, *, neighbours: int = 30,
                 groups: int = 4, per_group: int = 2) -> None:
        self.index = index
        self.weights = weights or Weights()
        self.neighbours = neighbours
        self.groups = groups
        self.per_group = per_group

    def gather(self, messages: Sequence[dict[str, str]], *, exclude_conversation: str | None = None) -> list[Candidate]:
        """Replies of the closest cases, ``per_group`` from each of the ``groups`` best-supported groups."""
        message, context = query_of(messages)
        near = self.index.neighbours(message, context, self.neighbours, exclude_conversation=exclude_conversation)
        if not near:
            return []
        support: dict[int, float] = {}
        for n in near:
            support[n.case.group] = support.get(n.case.group, 0.0) + n.similarity ** 2
        total = sum(support.values()) or 1.0
        best_groups = sorted(support, key=lambda g: -support[g])[: self.groups]
        out: list[Candidate] = []
        for g in best_groups:
            seen: set[str] = set()
            for n in (n for n in near if n.case.group == g):
                if n.case.agent in seen:
                    continue
                seen.add(n.case.agent)
                out.append(_candidate(n, support[g] / total))
                if len(seen) == self.per_group:
                    break
        return out

    def rank(self, candidates: list[Candidate], fits: Sequence[float] | None = None) -> list[Candidate]:
        """Candidates with their combined score, best first (``fits``: the model's mean log-probs)."""
        for i, c in enumerate(candidates):
            if fits is not None:
                c.fit = fits[i]
                if c.case is not None:
                    prior = self.index.cases[c.case].prior
                    c.pmi = c.fit - prior if prior is not None else None
            c.score = self.weights.score(c)
        return sorted(candidates, key=lambda c: -c.score)

    def uses_model(self) -> bool:
        return any(f in self.weights.features for f in ("fit", "pmi"))


def _candidate(n: Neighbour, agreement: float) -> Candidate:
    return Candidate(n.case.agent, "case", n.index, n.case.conversation_id, n.case.group, n.similarity, agreement)


# -- fitting the weights after training -------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    """A customer turn in its conversation and the reply the agent gave."""

    messages: list[dict[str, str]]  # the conversation up to and including the customer's turn
    reference: str


def exchanges_of(conversations: Sequence[Any], limit: int | None = None) -> list[Exchange]:
    """Every (conversation so far, agent reply) of ``conversations``, up to ``limit`` spread over them."""
    out: list[Exchange] = []
    for conv in conversations:
        turns = [m for m in conv.as_messages() if m["role"] != "system"]
        for i in range(1, len(turns)):
            if turns[i]["role"] == "assistant" and turns[i - 1]["role"] == "user":
                out.append(Exchange(turns[:i], turns[i]["content"]))
    if limit is not None and len(out) > limit:
        step = len(out) / limit
        out = [out[int(i * step)] for i in range(limit)]
    return out


def reply_priors(index: CaseIndex, prior_of: Callable[[Sequence[str]], list[float]], *,
                 batch: int = 32, progress: Callable[[int, int], None] | None = None) -> list[float | None]:
    """Each case's reply prior (see ``Case.prior``), computed once per distinct reply."""
    replies = sorted({c.agent for c in index.cases})
    value: dict[str, float] = {}
    for start in range(0, len(replies), batch):
        chunk = replies[start:start + batch]
        value.update(zip(chunk, prior_of(chunk)))
        if progress:
            progress(min(start + batch, len(replies)), len(replies))
    return [value.get(c.agent) for c in index.cases]


def fit_weights(grounder: Grounder, exchanges: Sequence[Exchange], scorer: Scorer | None,
                group_of: Callable[[str], int], *,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Weights]:
    """Fit how the evidence combines, on held-out exchanges: a candidate counts as right when
    it is in the group of the reply the agent really gave (``group_of``).

    Returns ``retrieval`` (retrieval evidence alone) and, with a ``scorer``, ``model`` (all
    evidence) weights. A set keeps the defaults when the exchanges never offer a choice
    between a right and a wrong candidate.
    """
    rows: list[Candidate] = []
    labels: list[int] = []
    for i, ex in enumerate(exchanges):
        candidates = grounder.gather(ex.messages)
        if candidates:
            fits = scorer(ex.messages, [c.text for c in candidates]) if scorer is not None else None
            grounder.rank(candidates, fits)
            want = group_of(ex.reference)
            rows += candidates
            labels += [int(c.group == want) for c in candidates]
        if progress:
            progress(i + 1, len(exchanges))
    out = {"retrieval": _fit(rows, labels, RETRIEVAL_FEATURES, len(exchanges))}
    if scorer is not None:
        out["model"] = _fit(rows, labels, FEATURES, len(exchanges))
    return out


def _fit(candidates: Sequence[Candidate], labels: Sequence[int], names: tuple[str, ...], n: int) -> Weights:
    from sklearn.linear_model import LogisticRegression

    if len(set(labels)) < 2:
        return Weights()
    model = LogisticRegression(C=1.0, max_iter=2000).fit([c.features(names) for c in candidates], labels)
    return Weights(names, tuple(float(c) for c in model.coef_[0]), float(model.intercept_[0]), fitted_on=n)
