"""Past resolved cases (what the customer said -> what the agent replied) and retrieval over them.

Built from the training split at train time and saved beside the model as ``cases.jsonl``.
A case keeps the agent turn before the customer's message as its context, so in a multi-turn
history "yes please" after "Would you like a receipt?" finds cases that answered that.

Similarity is TF-IDF over word uni+bigrams and character 3-5-grams of the customer's message
(characters survive typos and inflections: "cancelation", "cancelling"), plus a smaller share
for the agent turn before it. Replies are also clustered into *groups* of near-identical
answers (k-means over their TF-IDF), so that candidates can be gathered per group: one wrong
neighbour cannot crowd out the answer most close cases agree on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from appkit.data import Conversation

CASES_FILE = "cases.jsonl"
CONTEXT_WEIGHT = 0.3  # share of the similarity given to the agent turn before the message


@dataclass(frozen=True)
class Case:
    """One resolved exchange."""

    customer: str
    agent: str
    conversation_id: str = ""
    context: str = ""  # the agent turn before the customer's message, if any
    group: int = -1  # cluster of near-identical replies
    prior: float | None = None  # mean log P(agent | a conversation saying nothing) under the model


@dataclass(frozen=True)
class Neighbour:
    """A retrieved case and how close its customer message (and context) is to the query."""

    index: int
    case: Case
    similarity: float


def cases_from(conversations: Sequence[Conversation]) -> list[Case]:
    """Every (customer turn, next agent turn) pair of ``conversations``, with the agent turn before."""
    out: list[Case] = []
    for conv in conversations:
        turns = [t for t in conv.turns if t.role != "system"]
        for i, (a, b) in enumerate(zip(turns, turns[1:])):
            if a.role == "user" and b.role == "assistant":
                context = turns[i - 1].text if i > 0 and turns[i - 1].role == "assistant" else ""
                out.append(Case(a.text, b.text, conv.id, context))
    return out


def query_of(messages: Sequence[dict[str, str]]) -> tuple[str, str]:
    """(the customer's last message, the agent turn before it) of a conversation."""
    turns = [m for m in messages if m["role"] != "system"]
    for i in range(len(turns) - 1, -1, -1):
        if turns[i]["role"] == "user":
            context = turns[i - 1]["content"] if i > 0 and turns[i - 1]["role"] == "assistant" else ""
            return turns[i]["content"], context
    return "", ""


class CaseIndex:
    """Nearest past cases by TF-IDF similarity, and groups of near-identical replies."""

    def __init__(self, cases: Sequence[Case]) -> None:
        self.cases = list(cases)

    @cached_property
    def _fitted(self) -> tuple[Any, Any, Any, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True)
        texts = [c.customer for c in self.cases]
        matrix = _join(words.fit_transform(texts), chars.fit_transform(texts))
        contexts = [c.context for c in self.cases]
        context_matrix = _join(words.transform(contexts), chars.transform(contexts))
        return words, chars, matrix, context_matrix

    def neighbours(self, message: str, context: str = "", k: int = 30, *,
                   exclude_conversation: str | None = None) -> list[Neighbour]:
        """The ``k`` cases closest to ``message`` (said after ``context``), closest first."""
        import numpy as np

        if not self.cases or not message.strip():
            return []
        words, chars, matrix, context_matrix = self._fitted
        scores = (matrix @ _join(words.transform([message]), chars.transform([message])).T).toarray().ravel()
        if context.strip():
            near = (context_matrix @ _join(words.transform([context]), chars.transform([context])).T).toarray().ravel()
            scores = (1 - CONTEXT_WEIGHT) * scores + CONTEXT_WEIGHT * near
        order = np.argsort(-scores, kind="stable")
        out: list[Neighbour] = []
        for i in order:
            case = self.cases[int(i)]
            if exclude_conversation is not None and case.conversation_id == exclude_conversation:
                continue
            out.append(Neighbour(int(i), case, float(scores[i])))
            if len(out) == k:
                break
        return out

    def search(self, text: str, k: int = 2, *, context: str = "", exclude_conversation: str | None = None,
               min_score: float = 0.1) -> list[Case]:
        """The ``k`` closest cases with distinct replies (at least ``min_score`` similar)."""
        found: list[Case] = []
        seen: set[str] = set()
        for n in self.neighbours(text, context, k=max(4 * k, 20), exclude_conversation=exclude_conversation):
            if n.similarity < min_score or len(found) == k:
                break
            if n.case.agent not in seen:  # two copies of one answer teach nothing new
                seen.add(n.case.agent)
                found.append(n.case)
        return found

    def group_replies(self, n_groups: int | None = None, *, seed: int = 0) -> None:
        """Cluster the replies into groups of near-identical answers (k-means over reply TF-IDF)."""
        from sklearn.cluster import MiniBatchKMeans
        from sklearn.feature_extraction.text import TfidfVectorizer

        replies = sorted({c.agent for c in self.cases})
        k = n_groups or default_groups(len(replies))
        if len(replies) <= k:
            labels = {r: i for i, r in enumerate(replies)}
        else:
            vectors = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit_transform(replies)
            fitted = MiniBatchKMeans(k, n_init=3, random_state=seed, batch_size=1024).fit_predict(vectors)
            labels = {r: int(g) for r, g in zip(replies, fitted)}
        self.cases = [replace(c, group=labels[c.agent]) for c in self.cases]

    def reply_grouper(self) -> Callable[[str], int]:
        """A function from any reply text to the group of the closest case reply."""
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        matrix = vectorizer.fit_transform([c.agent for c in self.cases])
        groups = np.array([c.group for c in self.cases])

        def group_of(reply: str) -> int:
            return int(groups[int((matrix @ vectorizer.transform([reply]).T).toarray().argmax())])

        return group_of

    def with_priors(self, priors: Sequence[float | None]) -> None:
        """Store each case's reply prior (see ``Case.prior``)."""
        self.cases = [replace(c, prior=p) for c, p in zip(self.cases, priors)]

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / CASES_FILE
        with path.open("w", encoding="utf-8") as f:
            for case in self.cases:
                f.write(json.dumps(asdict(case), ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> CaseIndex | None:
        """The index saved with a model, or None when it was trained without retrieval."""
        path = Path(model_dir) / CASES_FILE
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as f:
            return cls([Case(**json.loads(line)) for line in f if line.strip()])


def default_groups(n_replies: int) -> int:
    """One group per reply up to 8 replies, then about one per 100 (Bitext's 4k answers: 42), at most 64."""
    if n_replies <= 8:
        return max(n_replies, 1)
    return max(8, min(64, math.ceil(n_replies / 100)))


def _join(words: Any, chars: Any) -> Any:
    """Word and character features side by side, each half of the similarity."""
    import scipy.sparse as sp

    return sp.hstack([words * math.sqrt(0.5), chars * math.sqrt(0.5)]).tocsr()

