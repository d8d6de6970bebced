"""Grounded replies: candidates from past cases, chosen with the model's judgement.

For each customer turn the bot gathers candidate replies: the closest cases of the reply groups
this message most likely calls for (so one wrong neighbour cannot crowd out the answer most
evidence agrees on). Each candidate is described by

- ``similarity``: how close its case's customer message is to this one (TF-IDF, see cases.py);
- ``route``: log P(its reply group | this message), from a classifier trained on the cases;
- ``agreement``: the share of the closest cases whose reply is in the candidate's group;
- ``echo``: how close the reply is to the opening of the one our model writes itself for this
  conversation (its first ``ECHO_WORDS`` words): the model's own answer votes for the past
  replies that say the same. The opening says which answer it is, and writing only that (at
  most ``ECHO_TOKENS``) keeps a grounded reply fast;
- ``pmi``: the model's mean log P(reply | this conversation) minus its log P(reply | a
  conversation saying nothing), so a reply likely anywhere gains nothing from being likely here.
  All candidates of a turn are scored in one batched pass over the shared prompt.

A logistic regression per reply mode (no weight below zero), fitted after training on the
validation conversations (how often the candidate that best matches the agent's real reply won;
where the history names intents, the best of the agent reply's intent), turns them into one
score; the highest wins.
Validation turns whose customer message the cases already hold nearly word for word are left
out of the fit when enough others remain: retrieval answers those by lookup, and on them the
model looks better than it is on the new wordings a bot meets (dev/LOG.md). In ``grounded``
mode, when even the best candidate scores under the level where the model's own reply was right
more often on those conversations, the model's reply is shown instead. ``select`` never shows a
generated reply; ``generate`` only does.

The model's evidence is used only where it proved itself on the validation conversations. The
echo (grounded) and PMI (select) are weighed for the turns where retrieval alone is unsure (its
best candidate scores under ``model_below``), the level under which the picks with them were
right more often than retrieval's by more than chance; the model's own reply is shown only below
a score where that gain, too, is more than chance. Where no such level exists, the mode ranks
as retrieval does, and the record says so (the model's weight is 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from apps.support.cases import CaseIndex, query_of
GROUNDING_FILE = "grounding.json"
RETRIEVAL_FEATURES = ("similarity", "route", "agreement")
# The evidence each mode weighs: grounded has the model's own reply to compare with; select
# has only the model's scores of the candidates; "retrieval" is the same pipeline without the model.
MODEL_FEATURES = ("echo", "pmi")
MODE_FEATURES = {"grounded": (*RETRIEVAL_FEATURES, "echo"), "select": (*RETRIEVAL_FEATURES, "pmi"),
                 "retrieval": RETRIEVAL_FEATURES}
ECHO_WORDS = 32  # the model's own reply is compared with the candidates on its opening words
ECHO_TOKENS = 2 * ECHO_WORDS  # written for the echo alone: room for ECHO_WORDS (Bitext: at most 51 tokens)


def echo_text(reply: str) -> str:
    """The part of the model's own reply the echo compares: its first ``ECHO_WORDS`` words."""
    return " ".join(reply.split()[:ECHO_WORDS])


@dataclass
class Candidate:
    """A possible reply and the evidence for it."""

    text: str
    source: str  # "case" (a past reply), "generated" (our model's own) or "none"
    case: int | None = None  # index in the CaseIndex
    conversation_id: str = ""  # where the case came from
    group: int = -1
    similarity: float = 0.0
    route: float = 0.0
    agreement: float = 0.0
    echo: float = 0.0
    pmi: float | None = None
    score: float = 0.0  # the combined evidence that this reply fits, 0..1

    def features(self, names: Sequence[str]) -> list[float]:
        values = {"similarity": self.similarity, "route": self.route, "echo": self.echo,
                  "agreement": math.log(max(self.agreement, 1e-3)), "pmi": self.pmi or 0.0}
        return [values[n] for n in names]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.text[:80]
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


@dataclass
class Weights:
    """How the evidence is combined: a logistic regression over ``features``."""

    features: tuple[str, ...] = RETRIEVAL_FEATURES
    coef: tuple[float, ...] = (4.0, 1.0, 0.5)
    intercept: float = -2.0
    # Under this best score a mode falls back: grounded shows the model's own reply, select hands
    # the conversation to a human.
    fallback_below: float = 0.0
    fitted_on: int = 0  # validation exchanges behind the weights (0: the defaults above)
    # The model's evidence is weighed only for turns where retrieval alone is this unsure (its
    # best candidate scores under this, by the "retrieval" weights); elsewhere retrieval ranks.
    model_below: float = 1.0

    def score(self, candidate: Candidate) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coef, candidate.features(self.features)))
        return 1 / (1 + math.exp(-max(min(z, 30.0), -30.0)))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Weights:
        return cls(tuple(data["features"]), tuple(data["coef"]), float(data["intercept"]),
                   float(data.get("fallback_below", 0.0)), int(data.get("fitted_on", 0)),
                   float(data.get("model_below", 1.0)))

    def model_weighs_in(self, retrieval_best: float) -> bool:
        """Whether the model's evidence counts on a turn where retrieval's best candidate scores
        ``retrieval_best`` (by the "retrieval" weights)."""
        return retrieval_best < self.model_below




def load_weights(model_dir: Path) -> dict[str, Weights]:
    """The weight sets saved with a model, by mode (defaults where none was fitted)."""
    path = Path(model_dir) / GROUNDING_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    return {mode: Weights.from_dict(data[mode]) if mode in data else Weights() for mode in MODE_FEATURES}


def save_weights(model_dir: Path, sets: dict[str, Weights]) -> None:
    """Save the weight sets (by mode) beside a model."""
    from appkit.files import write_json_atomic

    write_json_atomic(Path(model_dir) / GROUNDING_FILE, {name: w.as_dict() for name, w in sets.items()})


@dataclass
class Grounding:
    """What the bot chose for one turn, and why (stored with the reply)."""

    mode: str
    chosen: Candidate
    candidates: list[Candidate] = field(default_factory=list)
    case_customer: str = ""  # what the customer wrote in the past case the reply came from

    @property
    def confidence(self) -> float:
        return self.chosen.score

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.chosen.source, "case": self.chosen.case,
                "case_conversation": self.chosen.conversation_id, "case_customer": self.case_customer[:300],
                "score": round(self.chosen.score, 4), "candidates": [c.as_dict() for c in self.candidates[:8]]}


class Grounder:
    """Gathers candidates from the case index and ranks them."""

    def __init__(self, index: CaseIndex, weights: dict[str, Weights] | None = None, *, neighbours: int = 30,
                 groups: int = 4, per_group: int = 2) -> None:
        self.index = index
        self.weights = weights or {mode: Weights() for mode in MODE_FEATURES}
        self.neighbours = neighbours
        self.groups = groups
        self.per_group = per_group

    def gather(self, messages: Sequence[dict[str, str]]) -> list[Candidate]:
        """The most similar cases of the ``groups`` reply groups this message most likely calls
        for (by the router, else by the close cases' agreement), ``per_group`` each, plus the
        groups of the two closest cases."""
        import numpy as np

        message, context = query_of(messages)
        if not self.index.cases or not message.strip():
            return []
        sims = self.index.similarities(message, context)
        route = self.index.route(message, context)
        support: dict[int, float] = {}
        nearest = np.argsort(-sims, kind="stable")[: self.neighbours]
        for i in nearest:
            group = self.index.cases[int(i)].group
            support[group] = support.get(group, 0.0) + float(sims[i]) ** 2
        total = sum(support.values()) or 1.0
        ranked = sorted(route, key=lambda g: -route[g]) if route else sorted(support, key=lambda g: -support[g])
        chosen = list(dict.fromkeys([*ranked[: self.groups],
                                     *(self.index.cases[int(i)].group for i in nearest[:2])]))
        out: list[Candidate] = []
        for g in chosen:
            for n, i in enumerate(self._closest_in(g, sims)):
                if n == self.per_group:
                    break
                case = self.index.cases[i]
                out.append(Candidate(case.agent, "case", i, case.conversation_id, g, float(sims[i]),
                                     route.get(g, 0.0), support.get(g, 0.0) / total))
        return out

    def same_kind(self, messages: Sequence[dict[str, str]], candidate: Candidate,
                  accept: Callable[[str], bool]) -> Candidate | None:
        """The case of ``candidate``'s reply group closest to this message whose reply ``accept``
        takes, beyond the few ``gather`` returns: the answer of the same kind that fits where
        ``candidate``'s does not (a past reply that acted on an order this customer has not
        named). Scored on retrieval's evidence; ``candidate``'s route and agreement are its group's."""
        message, context = query_of(messages)
        if not message.strip():
            return None
        sims = self.index.similarities(message, context)
        for i in self._closest_in(candidate.group, sims):
            case = self.index.cases[i]
            if accept(case.agent):
                found = Candidate(case.agent, "case", i, case.conversation_id, candidate.group, float(sims[i]),
                                  candidate.route, candidate.agreement)
                found.score = self.weights["retrieval"].score(found)
                return found
        return None

    def _closest_in(self, group: int, sims: Any) -> Iterator[int]:
        """The cases of ``group``, most similar first, one per distinct reply."""
        import numpy as np

        members = self.index.members.get(group)
        if members is None:
            return
        seen: set[str] = set()
        for i in members[np.argsort(-sims[members], kind="stable")]:
            reply = self.index.cases[int(i)].agent
            if reply not in seen:
                seen.add(reply)
                yield int(i)

    def needs(self, mode: str, candidates: Sequence[Candidate] = ()) -> set[str]:
        """What the model must provide for ``mode`` on this turn: "echo" (its own reply, also
        grounded's fallback), "pmi" (its scores of the candidates); nothing where retrieval is
        sure enough that neither could change the reply."""
        weights = self.weights[mode]
        needs = {f for f, c in zip(weights.features, weights.coef) if f in MODEL_FEATURES and c != 0.0}
        if mode == "grounded" and weights.fallback_below > 0.0:
            needs.add("echo")
        if needs and candidates:
            best = self._retrieval_best(candidates)
            if not weights.model_weighs_in(best) and best >= weights.fallback_below:
                return set()
        return needs

    def _retrieval_best(self, candidates: Sequence[Candidate]) -> float:
        return max(self.weights["retrieval"].score(c) for c in candidates)

    def rank(self, candidates: list[Candidate], mode: str, *, fits: Sequence[float] | None = None,
             own_reply: str | None = None) -> list[Candidate]:
        """Candidates scored under ``mode``'s weights, best first.

        Args:
            fits: the model's mean log P(reply | conversation) of each candidate.
            own_reply: the model's own reply to the conversation.
        """
        if own_reply is not None:
            echoes = self.index.reply_similarity(echo_text(own_reply), [c.text for c in candidates])
            for c, echo in zip(candidates, echoes):
                c.echo = echo
        for i, c in enumerate(candidates):
            if fits is not None and c.case is not None:
                prior = self.index.cases[c.case].prior
                c.pmi = fits[i] - prior if prior is not None else None
        weights = self.weights[mode]
        if candidates and not weights.model_weighs_in(self._retrieval_best(candidates)):
            weights = self.weights["retrieval"]  # retrieval is sure enough alone
        for c in candidates:
            c.score = weights.score(c)
        return sorted(candidates, key=lambda c: -c.score)


# -- fitting the weights after training -------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    """A customer turn in its conversation and the reply the agent gave."""

    messages: list[dict[str, str]]  # the conversation up to and including the customer's turn
    reference: str


def exchanges_of(conversations: Sequence[Any]) -> list[Exchange]:
    """Every (conversation so far, agent reply) of ``conversations``."""
    out: list[Exchange] = []
    for conv in conversations:
        turns = [m for m in conv.as_messages() if m["role"] != "system"]
        for i in range(1, len(turns)):
            if turns[i]["role"] == "assistant" and turns[i - 1]["role"] == "user":
                out.append(Exchange(turns[:i], turns[i]["content"]))
    return out


def spread(exchanges: Sequence[Exchange], limit: int | None) -> list[Exchange]:
    """At most ``limit`` of ``exchanges``, evenly spaced over them."""
    if limit is None or len(exchanges) <= limit:
        return list(exchanges)
    step = len(exchanges) / limit
    return [exchanges[int(i * step)] for i in range(limit)]


SEEN_ABOVE = 0.9  # a validation message this similar to a case's is one the cases already hold
MIN_NEW = 20  # fewer new-worded validation turns than this: fit on all of them


def new_wordings(index: CaseIndex, exchanges: Sequence[Exchange]) -> list[Exchange]:
    """The exchanges whose customer message (with the agent turn before it) no case holds nearly
    word for word; all of them when fewer than ``MIN_NEW`` are."""
    new = [ex for ex in exchanges if float(index.similarities(*query_of(ex.messages)).max()) < SEEN_ABOVE]
    return new if len(new) >= MIN_NEW else list(exchanges)


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


# (conversation, reply texts) -> the model's mean log-probability per token of each reply
Scorer = Callable[[Sequence[dict[str, str]], Sequence[str]], list[float]]
NEAR_BEST = 0.05  # a candidate within this much of the best match to the agent's reply counts as right


def fit_weights(grounder: Grounder, exchanges: Sequence[Exchange], scorer: Scorer,
                own_replies: Sequence[str], *, progress: Callable[[int, int], None] | None = None
                ) -> dict[str, Weights]:
    """Fit each mode's weights on held-out exchanges, and grounded mode's ``fallback_below``.

    A candidate counts as right when it matches the reply the agent really gave as well as the
    best candidate does (TF-IDF similarity within NEAR_BEST); where the groups are the history's
    intents, it must also be of the agent reply's intent, and "best" is the best of that intent:
    a closer wording of another kind of answer is wrong. The model's own reply (``own_replies``,
    one per exchange) counts as right under the same rule, so the two are compared on equal
    terms when choosing the score under which the model's reply is shown.
    """
    index = grounder.index
    intents = index.groups_are_intents  # clusters of reply wordings are no judge of the kind of answer
    rows: list[Candidate] = []
    labels: list[int] = []
    turns: list[int] = []
    own_right: dict[int, float] = {}
    same_group: list[int] = []  # the candidate answers in the same group as the agent's reply
    for i, (ex, own) in enumerate(zip(exchanges, own_replies)):
        candidates = grounder.gather(ex.messages)
        if candidates:
            fits = scorer(ex.messages, [c.text for c in candidates])
            grounder.rank(candidates, "retrieval", fits=fits, own_reply=own)
            group = index.closest_group(ex.reference)
            kind = group if intents else None
            match = index.reply_similarity(ex.reference, [c.text for c in candidates])
            best = max((m for m, c in zip(match, candidates) if kind in (None, c.group)), default=-math.inf)
            rows += candidates
            labels += [_right(m, c.group, kind, best) for m, c in zip(match, candidates)]
            turns += [i] * len(candidates)
            same_group += [int(c.group == group) for c in candidates]
            own_match = index.reply_similarity(ex.reference, [own])[0]
            own_right[i] = float(_right(own_match, index.closest_group(own), kind, best))
        if progress:
            progress(i + 1, len(exchanges))
    out = {mode: _fit(rows, labels, names, len(exchanges)) for mode, names in MODE_FEATURES.items()}
    plain = out["retrieval"]
    for mode in ("grounded", "select"):  # the model's part is weighed only where it earns its place
        with_model = _best_per_turn(out[mode], rows, labels, turns)
        below = _threshold(_best_per_turn(plain, rows, labels, turns), {t: r for t, (_, r) in with_model.items()})
        out[mode] = _without_model(out[mode], plain) if below == 0.0 else replace(out[mode], model_below=below)
    out["grounded"].fallback_below = _threshold(_best_per_turn(out["grounded"], rows, labels, turns, plain),
                                                own_right)
    # select hands over where its best past reply was not even of the right kind half the time
    best = _best_per_turn(out["select"], rows, same_group, turns, plain)
    out["select"].fallback_below = _threshold(best, {t: 0.5 for t in best})
    return out


def _right(match: float, group: int, agents_group: int | None, best: float) -> int:
    """Whether a reply counts as right for the agent's real one: it is of the agent reply's group
    (when that is given), and its wording matches the agent's as well as the best candidate (of
    that group) does (``best``)."""
    return int(agents_group in (None, group) and match >= best - NEAR_BEST)


# How far above chance an improvement seen on the validation exchanges must be before it is
# used: a one-sided test at 5%. With a few hundred exchanges, a gain of a few turns is noise, and
# acting on noise made held-out replies worse (dev/LOG.md, 2026-12-06).
ALPHA = 0.05


def _significant(gains: Sequence[float]) -> bool:
    """Whether per-turn gains (one minus the other: -1, 0 or 1, or in between) add up to more
    than chance would give: an exact one-sided sign test on the turns that differ. (Its normal
    approximation called 3 wins of 3 significant, p = 0.125, and let the demo show its own replies.)"""
    from scipy.stats import binom

    wins, losses = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
    return sum(gains) > 0 and wins > losses and float(binom.sf(wins - 1, wins + losses, 0.5)) <= ALPHA


def _without_model(weights: Weights, plain: Weights) -> Weights:
    """``weights`` with the model's features weighted zero and retrieval's own weights: what
    the mode was fitted to use is kept in the record, at zero."""
    coef = dict(zip(plain.features, plain.coef))
    return Weights(weights.features, tuple(coef.get(f, 0.0) for f in weights.features), plain.intercept,
                   fitted_on=weights.fitted_on)


def _fit(candidates: Sequence[Candidate], labels: Sequence[int], names: tuple[str, ...], n: int) -> Weights:
    """A logistic regression none of whose weights is negative: more evidence for a reply never
    lowers its score. A feature fitted below zero is left out (weight 0) and the rest refitted,
    the most negative first. Within a reply group only ``similarity`` tells candidates apart, and
    a negative weight, fitted on the demo's 39 validation exchanges, put the less similar of two
    past replies first ("Good news: order 48213 left our warehouse" for "It has not arrived")."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if len(set(labels)) < 2:
        return Weights(names, (4.0, 1.0, 0.5, 1.0)[: len(names)])
    x, y = np.array([c.features(names) for c in candidates]), np.array(labels)
    kept = list(range(len(names)))
    coef = np.zeros(len(names))
    intercept = math.log(y.mean() / (1 - y.mean()))  # no feature left: the base rate
    while kept:
        model = LogisticRegression(C=1.0, max_iter=2000).fit(x[:, kept], y)
        fitted = model.coef_[0]
        if fitted.min() >= 0.0:
            coef[kept], intercept = fitted, float(model.intercept_[0])
            break
        del kept[int(fitted.argmin())]
    return Weights(names, tuple(float(c) for c in coef), intercept, fitted_on=n)


def _best_per_turn(weights: Weights, candidates: Sequence[Candidate], labels: Sequence[int],
                   turns: Sequence[int], plain: Weights | None = None) -> dict[int, tuple[float, int]]:
    """Each turn's best score under ``weights`` and whether that candidate was right; with
    ``plain``, as ``Grounder.rank`` picks: by ``plain`` where its best score reaches ``weights.model_below``."""
    best: dict[int, tuple[float, int]] = {}
    for c, label, turn in zip(candidates, labels, turns):
        score = weights.score(c)
        if turn not in best or score > best[turn][0]:
            best[turn] = (score, label)
    if plain is None:
        return best
    ranked = _best_per_turn(plain, candidates, labels, turns)
    return {t: best[t] if weights.model_weighs_in(ranked[t][0]) else ranked[t] for t in best}


def _threshold(best: dict[int, tuple[float, int]], fallback_right: dict[int, float]) -> float:
    """The ``fallback_below`` that gets the most turns right: the fallback (the model's own reply,
    or a human) for every turn under it, the best past reply for the rest. Ties keep the lower,
    and a threshold is only raised where the turns it gains are more than chance (``_significant``)."""
    ordered = sorted(fallback_right, key=lambda t: best[t][0])
    threshold, best_gain = 0.0, 0.0
    gains: list[float] = []
    for t in ordered:
        gains.append(fallback_right[t] - best[t][1])
        if sum(gains) > best_gain and _significant(gains):
            best_gain, threshold = sum(gains), best[t][0] + 1e-9
    return threshold
