"""Past resolved cases (what the customer said -> what the agent replied) and retrieval over them.

Built from the training split at train time and saved beside the model as ``cases.jsonl``.
A case keeps the agent turn before the customer's message as its context, so in a multi-turn
history "yes please" after "Would you like a receipt?" finds cases that answered that.

Similarity is TF-IDF over word uni+bigrams and character 3-5-grams of the customer's message
(characters survive typos and inflections: "cancelation", "cancelling"), plus a smaller share
for the agent turn before it. Replies are also put into *groups* of answers to the same kind of
question, so that candidates can be gathered per group: one wrong neighbour cannot crowd out the
answer most close cases agree on. When the history names an intent for its conversations (an
``intent`` column), the intents are the groups: a company's own labels tell its kinds of
question apart better than any clustering of the replies (on Bitext the router over intents
picks the right kind of answer for 99-100% of held-out wordings, over clusters 93-97%; see
dev/LOG.md). Otherwise, and for replies no intent covers, groups are k-means clusters of the
replies' TF-IDF.
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
ROUTER_FILE = "router.npz"
CONTEXT_WEIGHT = 0.3  # share of the similarity given to the agent turn before the message
# The router sees the agent turn before the message at full scale and learns how much it counts:
# after "Could you tell me the order number and what went wrong?", "it's order 552211" is a
# complaint. At 0.3 (the similarity's share) its regularised weights stayed small: on the sample
# history the router named the right group for 76% of held-out turns with a context, 98.5% at 1.0
# (dev/LOG.md). Routers saved before record no scale and were fitted at 0.3.
ROUTER_CONTEXT = 1.0
OLD_ROUTER_CONTEXT = 0.3
# Customers also change the subject ("I want a refund" right after the order status), which a
# history rarely shows, so a router reading the context fully learned to follow it (held-out
# opening messages put after another kind of conversation's agent turn: 31% routed right). It
# is also fitted on each opening message after agent turns of other groups, this many times
# (sample history: 82%; 92% on turns answering the agent, dev/LOG.md).
SWITCHED_COPIES = 2
# Whether the router weighs the agent turn by how little the message reads like a conversation's
# opening (P(opening | message), learned from the history's first messages): "I want a refund,
# this is ridiculous" opens a subject whatever came before; "it's order 552211" answers the agent.
OPENING_GATE = True
SAMPLE = 1000  # named replies per intent measured for how alike an intent's replies are
# A reply the history gives word for word under this many intents ("You're welcome! Have a great
# day." closing a refund, a complaint, ...) answers none of them in particular. Left in each
# conversation's intent, closings sat in every group, and after the order status "I want a
# refund, this is ridiculous" was answered "You're welcome!" for its context alone (dev/LOG.md).
SHARED_INTENTS = 3


@dataclass(frozen=True)
class Case:
    """One resolved exchange."""

    customer: str
    agent: str
    conversation_id: str = ""
    context: str = ""  # the agent turn before the customer's message, if any
    intent: str = ""  # the intent the history names for the conversation, if any
    group: int = -1  # its reply group: the intent's, or a cluster of alike replies (see group_replies)
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
                out.append(Case(a.text, b.text, conv.id, context, str(conv.meta.get("intent") or "")))
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
        self._router: tuple[Any, Any, Any] | None = None
        self._router_context = ROUTER_CONTEXT  # the scale its weights were fitted at
        self._gate: tuple[Any, Any] | None = None  # (coef, intercept) of P(opening | message)

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

    def _query(self, message: str, context: str) -> tuple[Any, Any]:
        words, chars, _, _ = self._fitted
        msg = _join(words.transform([message]), chars.transform([message]))
        ctx = _join(words.transform([context]), chars.transform([context])) if context.strip() else None
        return msg, ctx

    def similarities(self, message: str, context: str = "") -> Any:
        """(n_cases,) similarity of every case to ``message`` said after ``context``."""
        _, _, matrix, context_matrix = self._fitted
        msg, ctx = self._query(message, context)
        scores = (matrix @ msg.T).toarray().ravel()
        if ctx is not None:
            scores = (1 - CONTEXT_WEIGHT) * scores + CONTEXT_WEIGHT * (context_matrix @ ctx.T).toarray().ravel()
        return scores

    def neighbours(self, message: str, context: str = "", k: int = 30, *,
                   exclude_conversation: str | None = None) -> list[Neighbour]:
        """The ``k`` cases closest to ``message`` (said after ``context``), closest first."""
        import numpy as np

        if not self.cases or not message.strip():
            return []
        scores = self.similarities(message, context)
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

    # -- routing: which reply group a message calls for ------------------------------------------

    def fit_router(self, *, c: float = 5.0) -> None:
        """Learn which reply group each customer message (and context) calls for: a logistic
        regression over the same features as similarity, trained on the cases' own groups.

        Unlike nearest neighbours it weighs words by how well they tell groups apart ("cancel"
        vs "cancellation fee"), which is what a wrong nearest case most often gets wrong. The
        agent turn before the message counts as far as the message does not read like an
        opening (``OPENING_GATE``).
        """
        import numpy as np

        groups = np.array([c.group for c in self.cases])
        if len(set(groups.tolist())) < 2:
            self._router = None
            return
        self._gate = self._fit_gate()
        model = self._fit_router_model(self._router_features(), np.arange(len(self.cases)), groups, c)
        self._router = (model.coef_.astype(np.float32), model.intercept_.astype(np.float32), model.classes_)
        self._router_context = ROUTER_CONTEXT

    def route(self, message: str, context: str = "") -> dict[int, float]:
        """log P(group | message, context) for every reply group (empty without a router)."""
        import numpy as np
        import scipy.sparse as sp
        from scipy.special import log_softmax

        router = getattr(self, "_router", None)
        if router is None:
            return {}
        coef, intercept, classes = router
        msg, ctx = self._query(message, context)
        ctx = ctx * (1.0 - float(self._opening(msg)[0])) if ctx is not None else sp.csr_matrix(msg.shape)
        x = sp.hstack([msg, ctx * self._router_context]).tocsr()
        if x.shape[1] != coef.shape[1]:
            from appkit.errors import ModelError

            raise ModelError(f"the saved reply router expects {coef.shape[1]} features and the cases give "
                             f"{x.shape[1]} (another scikit-learn version?); train the support model again.")
        logits = np.asarray(x @ coef.T).ravel() + intercept
        if len(classes) == 2 and logits.size == 1:  # two groups: one logit, for the second
            logits = np.array([0.0, logits[0]])
        return dict(zip((int(g) for g in classes), log_softmax(logits).tolist()))

    def topic(self, message: str, context: str = "") -> str | None:
        """The name of the reply group the router gives ``message`` (said after ``context``):
        the model reads it after the customer's message (see ``prompting.with_topics``)."""
        route = self.route(message, context)
        return self.group_names.get(max(route, key=route.__getitem__)) if route else None

    @cached_property
    def group_names(self) -> dict[int, str]:
        """A short name per reply group: the intent of all its named cases ("cancel order"), or
        of most of an intent's cases (the replies many intents share, in the "thanks" intent's
        group, see ``SHARED_INTENTS``), else "group N" (clusters; shared replies of no intent's)."""
        from collections import Counter

        total = Counter(c.intent for c in self.cases if c.intent)
        named: dict[int, Counter[str]] = {}
        for c in self.cases:
            named.setdefault(c.group, Counter())
            if c.intent:
                named[c.group][c.intent] += 1
        names = {}
        for g, counts in named.items():
            intent, count = max(counts.items(), key=lambda kv: (kv[1] / total[kv[0]], kv[1]), default=("", 0))
            named_by = count and (len(counts) == 1 or 2 * count > total[intent])
            names[g] = intent.replace("_", " ") if named_by else f"group {g}"
        return names

    def held_out_topics(self, folds: int = 5, *, c: float = 5.0,
                        progress: Callable[[int, int], None] | None = None) -> list[str | None]:
        """Each case's topic as the router names it for a message it never saw: a router fitted
        on the other ``folds - 1`` parts of the conversations (whole conversations per part).

        Training shows the model these, not the cases' own groups, so it learns how far the
        router's topic can be trusted on new wordings (on a history whose router is often
        wrong, little), not that the topic is always right.
        """
        import numpy as np
        from sklearn.model_selection import GroupKFold

        groups = np.array([c.group for c in self.cases])
        conversations = np.array([c.conversation_id for c in self.cases])
        folds = min(folds, len(set(conversations.tolist())))
        if len(set(groups.tolist())) < 2 or folds < 2:
            return [self.group_names.get(int(g)) for g in groups]
        features = self._router_features()
        predicted = groups.copy()
        for done, (fit_rows, held_rows) in enumerate(GroupKFold(n_splits=folds).split(features, groups, conversations)):
            if len(set(groups[fit_rows].tolist())) >= 2:  # else it would name that one group for everything
                model = self._fit_router_model(features, fit_rows, groups, c)
                predicted[held_rows] = model.predict(features[held_rows])
            if progress is not None:
                progress(done + 1, folds)
        return [self.group_names.get(int(g)) for g in predicted]

    def _fit_router_model(self, features: Any, rows: Any, groups: Any, c: float) -> Any:
        """The router fitted on the cases ``rows`` (``features``: ``_router_features()``), and on
        their opening messages put after the agent turns of other groups' conversations among
        them (``SWITCHED_COPIES``)."""
        import numpy as np
        import scipy.sparse as sp

        x, y = features[rows], groups[rows]
        later = self._later[rows]
        openings, turns = rows[~later], rows[later]
        if len(openings) and len(turns):
            _, _, messages, contexts = self._fitted
            rng = np.random.default_rng(0)
            after = rng.choice(turns, size=(SWITCHED_COPIES, len(openings)))
            first = np.broadcast_to(openings, after.shape)
            other = groups[after] != groups[first]
            first, after = first[other], after[other]
            shown = sp.diags(1.0 - self._held_out_opening[first]) @ contexts[after]
            x = sp.vstack([x, sp.hstack([messages[first], shown * ROUTER_CONTEXT])]).tocsr()
            y = np.concatenate([y, groups[first]])
        return _router_model(c).fit(x, y)

    def _router_features(self) -> Any:
        import scipy.sparse as sp

        _, _, matrix, context_matrix = self._fitted
        shown = sp.diags(1.0 - self._held_out_opening) @ context_matrix
        return sp.hstack([matrix, shown * ROUTER_CONTEXT]).tocsr()

    # -- the opening gate: does a message start a subject, or answer the agent? -------------------

    @cached_property
    def _later(self) -> Any:
        """Whether each case answers an agent turn (has one before it) rather than opening its conversation."""
        import numpy as np

        return np.array([bool(c.context) for c in self.cases])

    def _gate_learnable(self) -> bool:
        """Whether there is a gate to fit: ``OPENING_GATE`` is on and the history has both kinds of turn."""
        return OPENING_GATE and bool(self._later.any()) and not bool(self._later.all())

    def _fit_gate(self) -> tuple[Any, Any] | None:
        """P(a message opens its conversation | its words), fitted on every case (None where
        ``_gate_learnable`` is not)."""
        import numpy as np

        if not self._gate_learnable():
            return None
        model = _router_model(1.0).fit(self._fitted[2], ~self._later)
        return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)

    def _opening(self, messages: Any) -> Any:
        """P(opening) of each row of ``messages`` (message features) under the fitted gate; 0 without one."""
        import numpy as np
        from scipy.special import expit

        gate = getattr(self, "_gate", None)
        if gate is None:
            return np.zeros(messages.shape[0])
        coef, intercept = gate
        return expit(np.asarray(messages @ coef.T).ravel() + intercept)

    @cached_property
    def _held_out_opening(self) -> Any:
        """Each case's P(opening) from a gate that never saw its conversation (5 folds), as the
        router meets new messages: a gate fitted on them would be surer than it is."""
        import numpy as np
        from sklearn.model_selection import GroupKFold

        out = np.zeros(len(self.cases))
        if not self._gate_learnable():
            return out
        matrix, opens = self._fitted[2], ~self._later
        conversations = np.array([c.conversation_id for c in self.cases])
        folds = min(5, len(set(conversations.tolist())))
        if folds < 2:  # one conversation: nothing to hold out
            return _router_model(1.0).fit(matrix, opens).predict_proba(matrix)[:, 1]
        for fit, held in GroupKFold(n_splits=folds).split(matrix, opens, conversations):
            if len(set(opens[fit].tolist())) == 2:
                out[held] = _router_model(1.0).fit(matrix[fit], opens[fit]).predict_proba(matrix[held])[:, 1]
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

    @cached_property
    def members(self) -> dict[int, Any]:
        """Case indices of each reply group."""
        import numpy as np

        groups = np.array([c.group for c in self.cases])
        return {int(g): np.flatnonzero(groups == g) for g in np.unique(groups)}

    def group_replies(self, n_groups: int | None = None, *, seed: int = 0) -> None:
        """Put the replies into groups: the history's intents when at least half of the cases
        name one, else k-means clusters of the replies' TF-IDF (``n_groups`` of them)."""
        if self.groups_are_intents:
            groups = self._intent_groups(seed)
        else:
            labels = _cluster(sorted({c.agent for c in self.cases}), n_groups, seed)
            groups = [labels[c.agent] for c in self.cases]
        self.cases = [replace(c, group=g) for c, g in zip(self.cases, groups)]
        self.__dict__.pop("members", None)
        self.__dict__.pop("group_names", None)

    @property
    def groups_are_intents(self) -> bool:
        """Whether the reply groups are the history's intents: at least half of the cases name one."""
        named = [c for c in self.cases if c.intent]
        return 2 * len(named) >= len(self.cases) and len({c.intent for c in named}) >= 2

    def _intent_groups(self, seed: int) -> list[int]:
        """One group per intent, and one for the replies many intents share (``SHARED_INTENTS``).
        A reply of a case without an intent joins the intent of the closest named reply when it
        is as close as named replies are to their own intent's (all but the least alike 5%), and
        the rest are clustered into groups of their own (answers to questions the history never
        labelled, such as a person's answers learned from use)."""
        import numpy as np

        intents = sorted({c.intent for c in self.cases if c.intent})
        number = {intent: i for i, intent in enumerate(intents)}
        shared = self._shared_group(number)
        of_reply = {c.agent: shared.get(c.agent, number[c.intent]) for c in self.cases if c.intent}
        unnamed = sorted({c.agent for c in self.cases if c.agent not in of_reply})
        if unnamed:
            named = list(of_reply)
            labels = np.array([of_reply[r] for r in named])
            vectors = self._reply_vectorizer.transform(named).tocsr()
            usual: list[float] = []  # each named reply's similarity to the closest other of its intent
            rng = np.random.default_rng(seed)
            for g in range(len(intents)):
                members = np.flatnonzero(labels == g)
                if len(members) > 1:  # at most SAMPLE of them measured: the memory stays small
                    rows = np.sort(rng.permutation(len(members))[:SAMPLE])
                    within = (vectors[members[rows]] @ vectors[members].T).toarray()
                    within[np.arange(len(rows)), rows] = -1.0
                    usual += within.max(axis=1).tolist()
            level = float(np.quantile(usual, 0.05)) if usual else 1.0
            unnamed_vectors = self._reply_vectorizer.transform(unnamed)
            rest = []
            for start in range(0, len(unnamed), 512):
                sims = (unnamed_vectors[start:start + 512] @ vectors.T).toarray()
                for reply, row in zip(unnamed[start:start + 512], sims):
                    i = int(row.argmax())
                    if row[i] >= level:
                        of_reply[reply] = int(labels[i])
                    else:
                        rest.append(reply)
            first = len(intents) + (len(intents) in shared.values())  # after the shared replies' own group
            of_reply.update((r, first + g) for r, g in _cluster(rest, None, seed).items())
        return [shared.get(c.agent, number[c.intent]) if c.intent else of_reply[c.agent] for c in self.cases]

    def _shared_group(self, number: dict[str, int]) -> dict[str, int]:
        """The group of each reply the history gives under ``SHARED_INTENTS`` or more intents:
        all in one, the group of the intent that is mostly such replies (the history's "thanks"),
        else a group of their own after the intents'."""
        from collections import Counter

        under: dict[str, set[str]] = {}
        for c in self.cases:
            if c.intent:
                under.setdefault(c.agent, set()).add(c.intent)
        shared = {reply for reply, named in under.items() if len(named) >= SHARED_INTENTS}
        if not shared:
            return {}
        total = Counter(c.intent for c in self.cases if c.intent)
        of_shared = Counter(c.intent for c in self.cases if c.intent and c.agent in shared)
        home, count = max(of_shared.items(), key=lambda kv: (kv[1] / total[kv[0]], kv[0]))
        group = number[home] if 2 * count > total[home] else len(number)
        return dict.fromkeys(shared, group)

    @cached_property
    def _reply_vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit([c.agent for c in self.cases])

    @cached_property
    def _reply_matrix(self) -> Any:
        return self._reply_vectorizer.transform([c.agent for c in self.cases])

    def closest_group(self, reply: str) -> int:
        """The group of the case reply closest to ``reply`` (TF-IDF)."""
        scores = (self._reply_matrix @ self._reply_vectorizer.transform([reply]).T).toarray().ravel()
        return self.cases[int(scores.argmax())].group

    def reply_similarity(self, text: str, replies: Sequence[str]) -> list[float]:
        """TF-IDF cosine similarity of ``text`` to each of ``replies`` (weighted as the cases' replies)."""
        if not replies:
            return []
        vectorizer = self._reply_vectorizer
        return (vectorizer.transform(list(replies)) @ vectorizer.transform([text]).T).toarray().ravel().tolist()

    def with_priors(self, priors: Sequence[float | None]) -> None:
        """Store each case's reply prior (see ``Case.prior``)."""
        self.cases = [replace(c, prior=p) for c, p in zip(self.cases, priors)]

    def save(self, model_dir: Path) -> Path:
        """Write the cases (and the router's weights, which refer to features rebuilt from them)."""
        import numpy as np

        path = Path(model_dir) / CASES_FILE
        with path.open("w", encoding="utf-8") as f:
            for case in self.cases:
                f.write(json.dumps(asdict(case), ensure_ascii=False) + "\n")
        router = getattr(self, "_router", None)
        if router is not None:
            coef, intercept, classes = router
            gate = {} if self._gate is None else {"gate_coef": self._gate[0], "gate_intercept": self._gate[1]}
            with (Path(model_dir) / ROUTER_FILE).open("wb") as f:
                np.savez(f, coef=coef, intercept=intercept, classes=classes,
                         context=np.float32(self._router_context), **gate)
        return path

    @classmethod
    def load(cls, model_dir: Path) -> CaseIndex | None:
        """The index saved with a model, or None when it was trained without retrieval."""
        path = Path(model_dir) / CASES_FILE
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as f:
            index = cls([Case(**json.loads(line)) for line in f if line.strip()])
        router = Path(model_dir) / ROUTER_FILE
        if router.is_file():
            import numpy as np

            with np.load(router, allow_pickle=False) as data:
                index._router = (data["coef"], data["intercept"], data["classes"])
                index._router_context = float(data["context"]) if "context" in data else OLD_ROUTER_CONTEXT
                if "gate_coef" in data:  # routers saved before the gate read the context as it came
                    index._gate = (data["gate_coef"], data["gate_intercept"])
        return index


def _router_model(c: float) -> Any:
    """The (unfitted) classifier from a message's features to its reply group."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000)


def _cluster(replies: Sequence[str], n_groups: int | None, seed: int) -> dict[str, int]:
    """Replies into ``n_groups`` (default: ``default_groups``) k-means clusters of their TF-IDF."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    k = n_groups or default_groups(len(replies))
    if len(replies) <= k:
        return {r: i for i, r in enumerate(replies)}
    vectors = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit_transform(replies)
    fitted = MiniBatchKMeans(k, n_init=3, random_state=seed, batch_size=1024).fit_predict(vectors)
    return {r: int(g) for r, g in zip(replies, fitted)}


def default_groups(n_replies: int) -> int:
    """One group per reply up to 8 replies, then about one per 100 (Bitext's 4k answers: 42), at most 64."""
    if n_replies <= 8:
        return max(n_replies, 1)
    return max(8, min(64, math.ceil(n_replies / 100)))


def _join(words: Any, chars: Any) -> Any:
    """Word and character features side by side, each half of the similarity."""
    import scipy.sparse as sp

    return sp.hstack([words * math.sqrt(0.5), chars * math.sqrt(0.5)]).tocsr()

