"""Does the writer know the brand's voice, and does it keep to length?

For each model, on the corpus it was trained on (``data``):

- brand perplexity: per-token perplexity of the held-out articles (the newest ones, which
  training never saw; their ids are in the model's metadata), each prompted with its own brief
  and scored part by part exactly as training showed articles;
- other-voice perplexity: the same on text in another voice (``other``: e.g. a play, another
  brand's posts), cut into article-sized pieces titled by their first line. A model that
  learned the brand's voice, not just English, scores its own brand's unseen posts lower;
- length control: briefs made from held-out titles with targets cycling 80/150/300/600 words
  and formats cycling blog/social/email/product; the share of drafts within 25% of the target,
  and the mean |error|. Drafts are sampled as ``appkit writer write`` samples them (seeded), not stored.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.config import Settings
from appkit.errors import DataError

if TYPE_CHECKING:
    from appkit.eval import EvalTable

LENGTH_TARGETS = (80, 150, 300, 600)
FORMAT_CYCLE = ("blog", "social", "email", "product")
WITHIN = 0.25
DEFAULT_BRIEFS = 48


def evaluate_writer(
    data: str | Path,
    models: Sequence[str | None],
    settings: Settings,
    *,
    other: str | Path | None = None,
    limit: int | None = 300,
    briefs: int = DEFAULT_BRIEFS,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    **_: Any,
) -> EvalTable:
    """Score each of ``models`` (names or directories; None = the active writer) on ``data``'s held-out articles.

    Raises:
        DataError: the corpus has none of the model's held-out articles (trained with --holdout 0,
            or on another corpus), or ``other`` holds no text.
    """
    from appkit.data import read_corpus
    from apps.writer.articles import articles_from, chunk_documents
    from apps.writer.writer import Writer

    documents, _ = read_corpus(data)
    other_docs = read_corpus(other)[0] if other is not None else None
    rows: list[dict[str, Any]] = []
    for model in models:
        writer = Writer.open(model=model, settings=settings, policy=None)
        try:
            trained = writer.engine.metadata.get("writer", {})
            # Models from before link stripping kept links: "keep_links" absent means True.
            keep_links = trained.get("keep_links", True)
            articles, _ = articles_from(documents, keep_links=keep_links)
            held_ids = set(trained.get("holdout_ids") or [])
            held_out = [a for a in articles if a.id in held_ids][:limit]
            if not held_out:
                raise DataError(
                    f"{data}: none of the articles model {writer.model_name!r} held out is here; evaluate on the "
                    "corpus it was trained on (a model trained with --holdout 0 has nothing held out)."
                )
            row: dict[str, Any] = {"system": writer.model_name, "held_out": len(held_out)}
            row["brand_perplexity"] = perplexity(writer, held_out)
            if other_docs is not None:
                words = int(statistics.median(a.words for a in held_out))
                pieces = chunk_documents(other_docs, words, limit=len(held_out), keep_links=keep_links)
                if not pieces:
                    raise DataError(f"{other}: no piece of {words // 2}+ words to compare with.")
                row["other_pieces"] = len(pieces)
                row["other_perplexity"] = perplexity(writer, pieces)
            n = min(briefs, limit or briefs)
            row.update(length_control(writer, [a.title for a in held_out], n, seed=seed, progress=progress))
            rows.append(row)
        finally:
            writer.close()
    return _table(data, other, rows)


def perplexity(writer: Any, articles: Sequence[Any]) -> float:
    """exp(mean negative log-likelihood per article token), each article prompted with its brief."""
    import torch

    from apps.writer.segments import encode_article

    engine = writer.engine
    total, count = 0.0, 0
    with torch.inference_mode():
        for article in articles:
            for ex in encode_article(article, engine.tokenizer, writer.prompts, engine.context_length):
                ids = torch.tensor([ex.ids], device=engine.device)
                labels = torch.tensor(ex.labels[1:], device=engine.device)
                logits = engine.model(ids).logits[0, :-1].float()  # (T-1, V): predicts tokens 1..T-1
                keep = labels != -100
                logp = torch.log_softmax(logits[keep], dim=-1).gather(1, labels[keep][:, None])
                total -= float(logp.sum())
                count += int(keep.sum())
    return math.exp(total / max(count, 1))


def length_briefs(titles: Sequence[str], n: int) -> list[Any]:
    """``n`` briefs over ``titles``: targets cycle 80/150/300/600, formats cycle through every format."""
    from apps.writer.brief import make_brief

    out = []
    for i in range(n):
        words = LENGTH_TARGETS[i % len(LENGTH_TARGETS)]
        fmt = FORMAT_CYCLE[(i // len(LENGTH_TARGETS)) % len(FORMAT_CYCLE)]
        out.append(make_brief(titles[i % len(titles)], fmt, None, words))
    return out


def length_control(writer: Any, titles: Sequence[str], n: int, *, seed: int = 0,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Share of ``n`` drafts within 25% of their target, mean |error|, and the breakdown per target."""
    todo = length_briefs(titles, n)
    done = 0

    def draft(i: int) -> tuple[int, int]:
        nonlocal done
        d = writer.draft_stream(todo[i], seed=seed + i).run()
        done += 1
        if progress:
            progress(writer.model_name, done, len(todo))
        return todo[i].words, d.words

    with ThreadPoolExecutor(max_workers=8) as pool:  # submitted together, the engine batches them
        results = list(pool.map(draft, range(len(todo))))
    errors = [abs(got - want) / want for want, got in results]
    per_target = {
        str(t): round(sum(e <= WITHIN for (w, _), e in zip(results, errors) if w == t)
                      / max(1, sum(w == t for w, _ in results)), 3)
        for t in LENGTH_TARGETS
    }
    return {
        "briefs": len(results),
        "within_25": sum(e <= WITHIN for e in errors) / max(len(errors), 1),
        "mean_abs_error": statistics.fmean(errors) if errors else 0.0,
        "within_25_by_target": per_target,
        "lengths": [[w, g] for w, g in results],
    }


def _table(data: str | Path, other: str | Path | None, rows: list[dict[str, Any]]) -> EvalTable:
    from appkit.eval import EvalTable

    columns = ["system", "held-out", "brand ppl", "other-voice ppl", "length within 25%", "mean |error|", "briefs"]
    cells = [[
        r["system"], str(r["held_out"]), f"{r['brand_perplexity']:.2f}",
        f"{r['other_perplexity']:.2f}" if "other_perplexity" in r else "-",
        f"{r['within_25']:.0%}", f"{r['mean_abs_error']:.1%}", str(r["briefs"]),
    ] for r in rows]
    title = f"writer on held-out {Path(data).name}" + (f" vs. {Path(other).name}" if other else "")
    payload = {"data": str(data), "other": str(other) if other else None,
               "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}
    notes = [
        "brand ppl: the newest posts, never trained on; other-voice ppl: --other cut into pieces of the same length "
        "(lower = closer to the voice the model learned).",
        f"length: drafts for briefs from held-out titles, targets {'/'.join(map(str, LENGTH_TARGETS))} words and every "
        f"format; within 25% = share of drafts whose word count is within 25% of the target.",
    ]
    if other is None:
        notes.append("no --other text given: pass one (e.g. another brand's posts) to compare voices.")
    return EvalTable(title=title, columns=columns, rows=cells, data=payload, notes=notes)
