"""Train the writer: read a brand's articles, pair each with its brief, train, register as active.

The split is by date, not at random: the newest ``holdout`` share of the articles (10% by
default) is never trained on, so ``appkit writer eval`` can ask whether the model knows
the brand's voice on posts it has not seen; validation (early stopping, the checkpoint kept) is
a seeded 5% of the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from appkit.config import Settings, load_settings
from appkit.train.pipeline import ChatTrainingOptions, TrainedModel

APP_NAME = "writer"
HOLDOUT = 0.1
# Validation only picks the checkpoint (the held-out newest posts carry the honest score), so
# it takes a small share: on 471 posts, 21 validate and 403 train.
VAL_FRACTION = 0.05

Corpus = str | PathLike[str] | Sequence[str | PathLike[str]]


def train_writer(
    corpus: Corpus,
    *,
    name: str | None = None,
    options: ChatTrainingOptions | None = None,
    holdout: float = HOLDOUT,
    text_col: str | None = None,
    keep_links: bool = False,
    resume: bool = False,
    replace: bool = False,
    settings: Settings | None = None,
    log: Callable[[str], None] = print,
) -> TrainedModel:
    """Train a writer model on the articles under ``corpus`` and make it the active writer.

    Args:
        corpus: folders/files of Markdown (YAML front matter: title, tags, date) or text, or
            tables with a text column (see ``appkit.data.read_corpus``).
        name: the model's name; a new timestamped one by default, the interrupted run's with ``resume``.
        replace: train a new model in place of the writer model (or run) called ``name``.
        options: preset, budgets, base, device ...
        holdout: share of the newest articles kept out of training for evaluation (0 = none).
        text_col: the text column of tables.
        keep_links: train on link and image addresses and HTML as written (by default links keep
            only their words: a small model invents addresses).

    Raises:
        DataError: no readable corpus, or no usable article in it (TrainingError, CheckpointError,
            ModelError: as the shared trainer and ``resolve_base``).
    """
    from appkit.models import resolve_base
    from appkit.prompts import prompts_for
    from appkit.train.pipeline import fingerprint, train_language_model
    from appkit.train.tracking import latest_unfinished_run, run_name, tracked_run
    from apps.writer.segments import encode_articles, tokens_per_word

    settings = settings or load_settings()
    options = options or ChatTrainingOptions(device=settings.resolve_device())
    split = _read_articles(corpus, text_col=text_col, keep_links=keep_links, holdout=holdout, seed=options.seed, log=log)
    train, val, held_out = split.train, split.val, split.held_out
    if options.base:  # a wrong --base fails here, before a run is recorded
        options.base = str(resolve_base(options.base, settings))
    if resume and name is None:
        name = latest_unfinished_run(settings, APP_NAME, "appkit writer train")
    name = run_name(APP_NAME, name)
    prompts = prompts_for(settings)
    corpus_names = split.report.paths
    template = prompts.render("writer/brief.j2", title="", format="blog", tone=None, words=0, tags=[],
                              written=0, tail="")
    writer_meta: dict[str, Any] = {"template": template.name, "template_version": template.version,
                                   "holdout": holdout, "holdout_ids": [a.id for a in held_out],
                                   "formats": split.formats, "corpus": corpus_names,
                                   "keep_links": keep_links}  # evaluation cleans held-out articles alike

    def encode(tokenizer: Any, context: int) -> tuple[list[Any], list[Any]]:
        train_ex = encode_articles(train, tokenizer, prompts, context)
        # Saved with the model (the metadata is written after encoding): the writer turns a
        # word target into token budgets with it.
        writer_meta["tokens_per_word"] = round(tokens_per_word(train, tokenizer), 4)
        writer_meta["train_parts"] = len(train_ex)
        log(f"briefs -> articles: {len(train_ex)} training parts from {len(train)} articles "
            f"(context {context}; {writer_meta['tokens_per_word']:.2f} tokens per word)")
        return train_ex, encode_articles(val, tokenizer, prompts, context)

    config = {"corpus": corpus_names, "options": options.as_config(), "holdout": holdout, "keep_links": keep_links}
    with tracked_run(settings, APP_NAME, name, {**config, "resume": resume}, resume=resume, replace=replace) as run:
        trained = train_language_model(
            [a.text for a in train], encode,
            data_print=fingerprint((f"{a.brief()}\x00{a.text}" for a in train), val=[a.id for a in val],
                                   held_out=writer_meta["holdout_ids"], template=template.version,
                                   seed=options.seed, base=options.base),
            unit="article parts", name=name, models_dir=settings.models_dir, runs_dir=settings.runs_dir,
            options=options, resume=resume, log=log,
            extra_metadata={"app": APP_NAME, "writer": writer_meta},
        )
        run.register(trained, data={"corpus": corpus_names, "articles": split.usable, "train_articles": len(train),
                                    "held_out": len(held_out),
                                    "summary": f"{len(train)} articles ({Path(corpus_names[0]).name})"})
    log(f"saved {trained.path} and made it the active writer model; try `appkit writer write --title \"...\"`")
    return trained


@dataclass
class _Articles:
    """The corpus read and split."""

    report: Any  # read_corpus's report
    usable: int  # articles long enough to use
    train: list[Any]
    val: list[Any]
    held_out: list[Any]  # the newest, never trained on
    formats: dict[str, int]  # training articles per format (blog, newsletter ...)


def _read_articles(corpus: Corpus, *, text_col: str | None, keep_links: bool, holdout: float, seed: int,
                   log: Callable[[str], None]) -> _Articles:
    from appkit.data import read_corpus, split_conversations
    from appkit.errors import DataError
    from apps.writer.articles import articles_from, holdout_split

    documents, report = read_corpus(corpus, text_col=text_col)
    log(report.summary())
    articles, short = articles_from(documents, keep_links=keep_links)
    rest, held_out = holdout_split(articles, holdout)
    if len(rest) < 2:
        raise DataError(
            f"only {len(rest)} usable article(s) to train on (of {len(articles)}, {len(held_out)} held out); "
            "the writer needs at least 2 (one to train on, one to validate). Add articles or lower --holdout."
        )
    train, val = split_conversations(rest, val_fraction=VAL_FRACTION, seed=seed)
    formats = dict(Counter(a.brief().format for a in train))
    log(f"articles: {len(train)} train / {len(val)} validation / {len(held_out)} held out (newest"
        f"{', from ' + str(held_out[0].date) if held_out and held_out[0].date else ''}); "
        f"{short} too short to use; formats {formats}")
    return _Articles(report, len(articles), train, val, held_out, formats)
