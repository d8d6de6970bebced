"""Quality of support models on held-out conversations, next to a retrieval baseline.

The held-out set is exactly the validation split the model was trained with: training records
which conversations it trained and validated on (``split.json`` beside the model), and the
evaluation reads the history again and takes those, whatever options, filters or toxicity
backend it runs with now. For each held-out exchange (a customer message and the agent's
reference reply) every system answers the message:

- each bot in ``grounded`` mode (a past reply chosen with the model's judgement) and in
  ``generate`` mode (greedy), with its own prompt;
- the retrieval baseline: the stored reply of the most similar training message (TF-IDF).

Scores: validation perplexity (bots only), corpus BLEU (sacrebleu) and mean ROUGE-L F1
(rouge-score) against the reference, and intent accuracy: a TF-IDF + logistic-regression
classifier trained on the training replies' ``intent`` column labels each answer, and an
answer counts when its label is the held-out conversation's intent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appkit.config import Settings
from appkit.data import Conversation, read_history
from appkit.errors import DataError
from appkit.eval import EvalTable, fmt


@dataclass
class SystemScore:
    """One row of the evaluation table."""

    system: str
    n: int
    perplexity: float | None
    bleu: float
    rouge_l: float
    intent_accuracy: float | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


@dataclass(frozen=True)
class Exchange:
    """A held-out customer message, its context, the reference reply and the intent."""

    context: list[dict[str, str]]  # earlier turns
    message: str
    reference: str
    intent: str | None


def held_out_exchanges(conversations: Sequence[Conversation], *, by_person: bool = False) -> list[Exchange]:
    """The last customer turn -> agent reply of every held-out conversation.

    ``by_person``: the last reply a person wrote (stored conversations record which:
    learned.py), skipping conversations with none; a reply the active model wrote and a customer
    rated good is no fair reference for judging models, as the active model would say it again.
    """
    from apps.support.learned import PERSON_REPLIES

    out = []
    for conv in conversations:
        messages = [m for m in conv.as_messages() if m["role"] != "system"]
        replies = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        counted = set(conv.meta.get(PERSON_REPLIES, ())) if by_person else set(range(len(replies)))
        for k in reversed(range(len(replies))):
            i = replies[k]
            if k in counted and i > 0 and messages[i - 1]["role"] == "user":
                out.append(Exchange(messages[: i - 1], messages[i - 1]["content"], messages[i]["content"],
                                    conv.meta.get("intent")))
                break
    return out


class IntentClassifier:
    """TF-IDF + logistic regression from a reply's text to its intent."""

    def __init__(self, texts: Sequence[str], intents: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                                      LogisticRegression(max_iter=2000, C=10.0))
        self.pipeline.fit(list(texts), list(intents))

    def predict(self, texts: Sequence[str]) -> list[str]:
        return list(self.pipeline.predict(list(texts)))


def text_scores(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """(corpus BLEU 0-100, mean ROUGE-L F1 0-1)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references)]
    return bleu, sum(rouge) / max(len(rouge), 1)


def evaluate_support(
    data: str | Path,
    models: Sequence[str | None],
    settings: Settings,
    *,
    limit: int | None = 300,
    seed: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **_: Any,
) -> EvalTable:
    """Score each of ``models`` (names or directories; None = the active one) and the baseline."""
    from apps.support.bot import SupportBot
    from apps.support.cases import CaseIndex, cases_from

    bots = [SupportBot.open(model=m, settings=settings, policy=None) for m in models]
    try:
        train, val = recorded_split(data, bots)
        exchanges = held_out_exchanges(val)[:limit]
        if not exchanges:
            raise DataError(f"{data}: no held-out exchange to evaluate on.")
        intents = [c.meta.get("intent") for c in train]
        classifier = None
        if all(exchanges[i].intent for i in range(len(exchanges))) and all(intents):
            replies = [next(m["content"] for m in reversed(c.as_messages()) if m["role"] == "assistant") for c in train]
            classifier = IntentClassifier(replies, intents)  # type: ignore[arg-type]

        def score(name: str, answers: Sequence[str], perplexity: float | None) -> SystemScore:
            bleu, rouge = text_scores(answers, [e.reference for e in exchanges])
            accuracy = None
            if classifier is not None:
                predicted = classifier.predict(answers)
                accuracy = sum(p == e.intent for p, e in zip(predicted, exchanges)) / len(exchanges)
            return SystemScore(name, len(exchanges), perplexity, bleu, rouge, accuracy)

        rows = []
        for bot in bots:
            perplexity = validation_perplexity(bot, exchanges)
            modes = ["grounded", "generate"] if bot.grounder is not None else ["generate"]
            for mode in modes:
                answers = [r.text for r in answer_all(bot, exchanges, progress, mode)]
                rows.append(score(f"{bot.model_name} ({mode})", answers, perplexity))
        index = CaseIndex(cases_from(train))
        baseline = [(index.search(e.message, 1, min_score=0.0) or [None])[0] for e in exchanges]
        rows.append(score("retrieval baseline (TF-IDF)", [c.agent if c else "" for c in baseline], None))
        return _table(data, rows)
    finally:
        for bot in bots:
            bot.close()


def recorded_split(data: str | Path, bots: Sequence[Any]) -> tuple[list[Conversation], list[Conversation]]:
    """The (train, validation) conversations the models were trained with, read again from ``data``.

    Raises:
        DataError: a model has no recorded split, the models were split differently, or ``data``
            is not the history they were trained on.
    """
    splits = [read_split(bot.model_dir, bot.model_name) for bot in bots]
    # Models validated on the same conversations compare, whatever else they trained on (a
    # retrained candidate adds stored conversations to its predecessor's training split).
    if any(s["validation"] != splits[0]["validation"] for s in splits[1:]):
        raise DataError("the models were trained on different splits, so no held-out set is common to all: "
                        "evaluate them one at a time.")
    return split_from(data, splits[0], bots[0].engine.metadata, bots[0].model_name)


def read_split(model_dir: str | Path, model_name: str) -> dict[str, list[str]]:
    """The conversation ids a model was trained and validated on (``split.json`` beside it)."""
    from apps.support.train import SPLIT_FILE

    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        raise DataError(f"model {model_name!r} has no record of its training split ({path} is missing); "
                        "train it again with this version of appkit to evaluate it.")
    return json.loads(path.read_text())


def split_from(data: str | Path, split: dict[str, list[str]], metadata: dict[str, Any],
               model_name: str) -> tuple[list[Conversation], list[Conversation]]:
    """The (train, validation) conversations of ``split``, read from ``data`` and curated as the model's were
    (``metadata``: the model's appkit.json)."""
    from appkit.data import curate

    settings = metadata.get("curation", {}).get("settings", {})
    # Curated as in training (personal data replaced alike); conversations are taken by id, so
    # no filter (toxicity, duplicates) can move one from training into the held-out set.
    conversations, _ = curate(read_history(data), scrub_pii=settings.get("scrub_pii", True),
                              scrub_urls=settings.get("scrub_urls", True),
                              max_turn_chars=settings.get("max_turn_chars", 2000), toxic="keep")
    by_id = {c.id: c for c in conversations}
    missing = [i for i in split["validation"] if i not in by_id]
    if missing:
        raise DataError(f"{data}: {len(missing)} of the {len(split['validation'])} conversations model "
                        f"{model_name!r} was validated on are not in this file (e.g. {missing[0]!r}); "
                        "give the history it was trained on.")
    return [by_id[i] for i in split["train"] if i in by_id], [by_id[i] for i in split["validation"]]


def _table(data: str | Path, rows: Sequence[SystemScore]) -> EvalTable:
    table = EvalTable(f"support on held-out {Path(data).name}",
                      ["system", "n", "val ppl", "BLEU", "ROUGE-L", "intent acc."],
                      data={"data": str(data), "rows": [r.as_dict() for r in rows]})
    for r in rows:
        table.rows.append([r.system, str(r.n), fmt(r.perplexity, ".2f"), f"{r.bleu:.1f}", f"{r.rouge_l:.3f}",
                           fmt(r.intent_accuracy, ".1%")])
    return table


def answer_all(bot: Any, exchanges: Sequence[Exchange], progress: Callable[[str, int, int], None] | None,
               mode: str) -> list[Any]:
    """Each exchange answered in ``mode`` (BotReply objects); generated ones greedy, 8 at a time so the engine
    batches them."""
    from apps.support.replies import reply_params

    params = reply_params()  # as the bot answers when the caller sets nothing
    done = 0

    def answer(e: Exchange) -> Any:
        nonlocal done
        reply = bot.reply(e.message, e.context, params, mode=mode)
        done += 1
        if progress:
            progress(f"{bot.model_name} ({mode})", done, len(exchanges))
        return reply

    with ThreadPoolExecutor(max_workers=8 if mode == "generate" else 1) as pool:
        return list(pool.map(answer, exchanges))


def validation_perplexity(bot: Any, exchanges: Sequence[Exchange]) -> float:
    """exp(mean negative log-likelihood per reference-reply token), prompted as the bot prompts."""
    import torch

    from appkit.tokenizer import encode_conversation

    total, count = 0.0, 0
    model, tok = bot.engine.model, bot.engine.tokenizer
    with torch.inference_mode():
        for e in exchanges:
            messages, _ = bot.prompt([*e.context, {"role": "user", "content": e.message}])
            ids, mask = encode_conversation(tok, [*messages, {"role": "assistant", "content": e.reference}])
            ids, mask = ids[: bot.engine.context_length], mask[: bot.engine.context_length]
            labels = torch.tensor([t if m else -100 for t, m in zip(ids, mask)], device=bot.engine.device)
            n = int((labels != -100).sum())
            if n == 0:
                continue
            out = model(torch.tensor([ids], device=bot.engine.device), labels=labels[None], num_items_in_batch=1)
            total += float(out.loss)
            count += n
    return math.exp(total / max(count, 1))
