"""What customers wrote about: their messages grouped into topics, and the topics the bot handles worst.

When the model's training history named an intent per conversation (Bitext's ``intent``
column, say), a message that is like the training data (nearest-case similarity at or above the
drift's unlike level) takes the intent of its closest training messages (a similarity-weighted
vote of the 5 nearest). Messages unlike anything in training are clustered among themselves
and named by their commonest words: these are the *new* topics, the ones the model never saw.
Without intents every message is clustered. Clustering is agglomerative (average linkage,
cosine distance over TF-IDF of words and character 3-5-grams, cut at 0.9), fitted on at most
2,000 messages; the others join the closest cluster. Clusters of fewer than 3 messages are
left as "other".

A topic's *trouble* is the share of the bot's turns in it that were handed to a person or whose
reply was rated bad; the **gaps** are the topics in more trouble than the bot is overall, worst
first, with example messages (personal data replaced, as in training).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from appkit.insights.drift import js_distance

if TYPE_CHECKING:
    from appkit.insights.usage import Turn

OTHER = "other"
CUT = 0.9  # cosine distance at which clusters stop merging
MAX_FIT = 2000
MIN_SIZE = 3
NAME_MIN_DF = 3
NEIGHBOURS = 5
MAX_GAPS = 8
EXAMPLE_CHARS = 200


@dataclass
class Topic:
    """One topic of the period's customer messages."""

    name: str
    kind: str  # "intent" (a training intent), "new" (unlike the training data), "words" (a cluster)
    messages: int = 0
    share: float = 0.0
    reference_share: float | None = None  # its share of the training messages
    bot_turns: int = 0  # messages the bot answered or handed over (not those a person already had)
    handed_over: int = 0
    rated: int = 0
    positive: int = 0
    similarity: float | None = None  # median nearest-case similarity to the training messages
    examples: list[str] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list, repr=False)  # the customer messages in it

    @property
    def trouble(self) -> float:
        bad = self.handed_over + (self.rated - self.positive)
        return bad / self.bot_turns if self.bot_turns else 0.0

    @property
    def handoff_rate(self) -> float | None:
        return self.handed_over / self.bot_turns if self.bot_turns else None

    @property
    def positive_share(self) -> float | None:
        return self.positive / self.rated if self.rated else None

    def as_dict(self) -> dict[str, Any]:
        out = {**asdict(self), "trouble": round(self.trouble, 4), "handoff_rate": self.handoff_rate,
               "positive_share": self.positive_share}
        del out["message_ids"]
        return out


@dataclass
class Topics:
    topics: list[Topic]
    gaps: list[Topic]
    method: str
    overall_trouble: float
    shift: float | None = None  # Jensen-Shannon distance of the topic mix from the training data's

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "overall_trouble": round(self.overall_trouble, 4), "shift": self.shift,
                "topics": [t.as_dict() for t in self.topics], "gaps": [t.name for t in self.gaps]}


def find_topics(turns: Sequence[Turn], *, reference_texts: Sequence[str] = (),
                reference_labels: Sequence[str] | None = None, sims: Any = None, neighbours: Any = None,
                unlike_level: float | None = None, seed: int = 0) -> Topics:
    """Group ``turns`` into topics and pick the gaps.

    Args:
        reference_texts / reference_labels: the training messages and their intents (if any).
        sims / neighbours: (n, k) nearest-case similarities and reference indices of each turn.
        unlike_level: the similarity under which a message is unlike the training data.
    """
    import numpy as np

    texts = [t.text for t in turns]
    names: list[str] = [OTHER] * len(turns)
    kinds: dict[str, str] = {}
    reference_names: list[str] | None = None
    have_sims = sims is not None and len(turns) and unlike_level is not None
    if reference_labels and have_sims:
        named = 0
        rest: list[int] = []  # unlike the training data, or like training messages without an intent
        for i in range(len(turns)):
            votes: Counter[str] = Counter()
            if sims[i, 0] >= unlike_level:
                for s, j in zip(sims[i], neighbours[i]):
                    if reference_labels[j]:
                        votes[reference_labels[j]] += float(s)
            if votes:
                names[i] = votes.most_common(1)[0][0]
                kinds[names[i]] = "intent"
                named += 1
            else:
                rest.append(i)
        clusters = _clusters([texts[i] for i in rest], seed)
        for i, name in zip(rest, clusters.names):
            names[i] = name
        for name in set(clusters.names):
            inside = [i for i, n in zip(rest, clusters.names) if n == name]
            kinds[name] = "new" if float(np.median(sims[inside, 0])) < unlike_level else "words"  # type: ignore[operator]
        method = (f"{named} messages named by the nearest training intent; {len(rest)} unlike the training data "
                  "(or like training messages without one) clustered by their words")
        # Training messages without an intent go to the closest word cluster, as the period's do:
        # counted as "other" they made those clusters look absent from training.
        unlabelled = [i for i, label in enumerate(reference_labels) if not label]
        assigned = dict(zip(unlabelled, clusters.assign([reference_texts[i] for i in unlabelled]))) \
            if reference_texts else {}
        reference_names = [label or assigned.get(i, OTHER) for i, label in enumerate(reference_labels)]
    else:
        clusters = _clusters(texts, seed)
        names = list(clusters.names)
        for name in set(names):
            kinds[name] = "words"
        if have_sims:
            for name in set(names):
                members = [i for i, n in enumerate(names) if n == name]
                if float(np.median(sims[members, 0])) < unlike_level:  # type: ignore[operator]
                    kinds[name] = "new"
        if reference_texts:
            reference_names = clusters.assign(reference_texts)
        method = f"{len(texts)} messages clustered by their words (the training history names no intents)"
    return _summarise(turns, names, kinds, sims, reference_names, method)


def _summarise(turns: Sequence[Turn], names: list[str], kinds: dict[str, str], sims: Any,
               reference_names: list[str] | None, method: str) -> Topics:
    import numpy as np

    from appkit.data.pii import scrub_pii

    topics: dict[str, Topic] = {}
    members: dict[str, list[int]] = defaultdict(list)
    for i, (turn, name) in enumerate(zip(turns, names)):
        topic = topics.setdefault(name, Topic(name, kinds.get(name, "words")))
        members[name].append(i)
        topic.message_ids.append(turn.message_id)
        topic.messages += 1
        if not turn.with_human:
            topic.bot_turns += 1
            topic.handed_over += turn.handed_over
            if turn.rating is not None:
                topic.rated += 1
                topic.positive += turn.rating > 0
    reference_counts = Counter(reference_names) if reference_names is not None else None
    for name, topic in topics.items():
        topic.share = topic.messages / len(turns)
        if reference_counts is not None:
            topic.reference_share = reference_counts.get(name, 0) / max(len(reference_names or ()), 1)
        if sims is not None and len(turns):
            topic.similarity = round(float(np.median(sims[members[name], 0])), 4)
        # The troubled messages first: they are what a gap is about.
        ordered = sorted(members[name], key=lambda i: not (turns[i].handed_over or turns[i].rating == -1))
        seen: set[str] = set()
        for i in ordered:
            text = " ".join(scrub_pii(turns[i].text)[0].split())[:EXAMPLE_CHARS]
            if text and text.lower() not in seen:
                seen.add(text.lower())
                topic.examples.append(text)
            if len(topic.examples) == 3:
                break
    bot_turns = sum(t.bot_turns for t in topics.values())
    overall = sum(t.trouble * t.bot_turns for t in topics.values()) / bot_turns if bot_turns else 0.0
    ordered = sorted(topics.values(), key=lambda t: (-t.messages, t.name))
    gaps = sorted((t for t in ordered if t.name != OTHER and t.bot_turns >= MIN_SIZE and t.trouble > overall),
                  key=lambda t: (-t.trouble, -t.messages))[:MAX_GAPS]
    shift = None
    if reference_counts is not None:
        shift = round(js_distance({t.name: t.messages for t in ordered}, dict(reference_counts)), 4)
    return Topics(ordered, gaps, method, overall, shift)


@dataclass
class _Clustering:
    names: list[str]
    vectorizers: tuple[Any, Any] | None = None
    centroids: Any = None
    centroid_names: list[str] = field(default_factory=list)

    def assign(self, texts: Sequence[str]) -> list[str]:
        """The closest cluster of each text (for the training messages' share of each topic)."""
        if self.vectorizers is None or self.centroids is None or not len(texts):
            return [OTHER] * len(texts)
        scores = _features(self.vectorizers, texts) @ self.centroids.T
        return [self.centroid_names[int(j)] for j in scores.argmax(axis=1)]


def _features(vectorizers: tuple[Any, Any], texts: Sequence[str]) -> Any:
    import math

    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    words, chars = vectorizers
    return normalize(sp.hstack([words.transform(texts) * math.sqrt(0.5), chars.transform(texts) * math.sqrt(0.5)])
                     .tocsr())


def _clusters(texts: Sequence[str], seed: int) -> _Clustering:
    """Agglomerative clusters of ``texts`` (fitted on at most MAX_FIT of them), named by their words."""
    import random

    import numpy as np
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    if len(texts) < MIN_SIZE:
        return _Clustering([OTHER] * len(texts))
    # Words of letters only: an order number or a price names no topic.
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english", dtype=np.float32,
                            token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
    try:
        words.fit(texts)
    except ValueError:  # nothing but stop words and punctuation
        return _Clustering([OTHER] * len(texts))
    chars.fit(texts)
    x = _features((words, chars), texts)
    fit = sorted(random.Random(seed).sample(range(len(texts)), MAX_FIT)) if len(texts) > MAX_FIT else list(range(len(texts)))
    # The rows are unit vectors, so cosine distances come from one sparse product: scipy's pdist
    # over the dense rows took 18 s of a 25 s report on 100,000 messages (bench/report.py).
    sample = x[fit]
    distances = 1.0 - (sample @ sample.T).toarray().astype(np.float64)
    np.clip(distances, 0.0, 2.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    labels = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                     distance_threshold=CUT).fit(distances).labels_
    sizes = Counter(labels.tolist())
    groups = [g for g, n in sizes.most_common() if n >= MIN_SIZE]
    if not groups:
        return _Clustering([OTHER] * len(texts))
    centroids = normalize(np.vstack([np.asarray(x[[fit[i] for i in np.flatnonzero(labels == g)]].mean(axis=0))
                                     for g in groups]))
    word_matrix = words.transform(texts)
    terms = np.asarray(words.get_feature_names_out())
    # A name is made of words at least NAME_MIN_DF messages share: never one customer's own (a surname).
    rare = np.asarray((word_matrix > 0).sum(axis=0)).ravel() < NAME_MIN_DF
    assigned = np.asarray((x @ centroids.T)).argmax(axis=1)
    group_names: list[str] = []
    for j in range(len(groups)):
        inside = assigned == j
        # Words heavy in this cluster and light in the others ("newsletter", not "need help").
        weights = np.asarray(word_matrix[np.flatnonzero(inside)].mean(axis=0)).ravel()
        if (~inside).any():
            weights = weights - np.asarray(word_matrix[np.flatnonzero(~inside)].mean(axis=0)).ravel()
        weights[rare] = 0.0
        group_names.append(_name(terms, weights, group_names))
    names = [group_names[int(j)] for j in assigned]
    return _Clustering(names, (words, chars), centroids, group_names)


def _name(terms: Any, weights: Any, taken: list[str]) -> str:
    """The cluster's three heaviest words (a bigram covers its words), unique among the names so far."""
    import numpy as np

    chosen: list[str] = []
    for j in np.argsort(-weights)[:20]:
        term = str(terms[j])
        if weights[j] <= 0 or any(set(term.split()) & set(c.split()) for c in chosen):
            continue
        chosen.append(term)
        if len(chosen) == 3:
            break
    name = ", ".join(chosen) or OTHER
    base, n = name, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return name
