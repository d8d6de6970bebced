"""Past resolved cases (customer message -> agent reply) and TF-IDF retrieval over them.

Built from the training split at train time and saved beside the model as ``cases.jsonl``;
at reply time the most similar cases go into the system prompt. The model is trained with
the same prompt, so it learns to reuse what the team already answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from appkit.data import Conversation

CASES_FILE = "cases.jsonl"


@dataclass(frozen=True)
class Case:
    """One resolved exchange."""

    customer: str
    agent: str
    conversation_id: str = ""


def cases_from(conversations: Sequence[Conversation]) -> list[Case]:
    """Every (customer turn, next agent turn) pair of ``conversations``."""
    out: list[Case] = []
    for conv in conversations:
        turns = conv.turns
        for a, b in zip(turns, turns[1:]):
            if a.role == "user" and b.role == "assistant":
                out.append(Case(a.text, b.text, conv.id))
    return out


def query_text(messages: Sequence[dict[str, str]]) -> str:
    """What retrieval looks up for a conversation: its customer turns, most recent last."""
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


class CaseIndex:
    """TF-IDF nearest-neighbour search over past customer messages."""

    def __init__(self, cases: Sequence[Case]) -> None:
        self.cases = list(cases)

    @cached_property
    def _fitted(self) -> tuple[Any, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        # Word uni+bigrams with sublinear tf: short support messages, where a shared bigram
        # ("cancel order", "reset password") says more than a repeated word.
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True)
        matrix = vectorizer.fit_transform([c.customer for c in self.cases])
        return vectorizer, matrix

    def search(self, text: str, k: int = 2, *, exclude_conversation: str | None = None,
               min_score: float = 0.1) -> list[Case]:
        """The ``k`` cases whose customer message is most similar to ``text``."""
        if not self.cases or not text.strip():
            return []
        vectorizer, matrix = self._fitted
        scores = (matrix @ vectorizer.transform([text]).T).toarray().ravel()
        found: list[Case] = []
        seen_replies: set[str] = set()
        for i in scores.argsort()[::-1]:
            case = self.cases[int(i)]
            if scores[i] < min_score or len(found) == k:
                break
            if exclude_conversation is not None and case.conversation_id == exclude_conversation:
                continue
            if case.agent in seen_replies:  # two copies of one answer teach nothing new
                continue
            seen_replies.add(case.agent)
            found.append(case)
        return found

    def save(self, model_dir: Path) -> Path:
        path = model_dir / CASES_FILE
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
