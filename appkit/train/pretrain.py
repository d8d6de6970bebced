"""``appkit pretrain``: a base language model trained on raw text, for the apps to start from.

The same loop, budgets, checkpoints, resume and reports as the chat trainers; the difference is
the data: documents (articles, notes, transcripts) cut into context-length chunks with every
token learned. The tokenizer carries the chat special tokens from the start, so an app can
fine-tune the base (fully, or with LoRA) without resizing its embeddings. The model is
registered under the app name ``base``; ``--base NAME`` in any trainer finds it there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from appkit.config import Settings, load_settings
from appkit.train.pipeline import ChatTrainingOptions, TrainedModel, fingerprint, train_language_model

APP_NAME = "base"


def pretrain(
    corpus: str | PathLike[str] | Sequence[str | PathLike[str]],
    *,
    name: str | None = None,
    options: ChatTrainingOptions | None = None,
    text_col: str | None = None,
    resume: bool = False,
    replace: bool = False,
    settings: Settings | None = None,
    log: Callable[[str], None] = print,
) -> TrainedModel:
    """Train a base language model on the documents under ``corpus`` and register it.

    Args:
        corpus: files and folders of .md/.txt, or tables (.csv/.tsv/.jsonl/.json) with a text column.
        name: the model's name (default ``base-<date>-<time>``; the interrupted one with ``resume``).
        replace: train a new base in place of the base model (or run) called ``name``.
        options: preset, budgets, device ...; ``options.base`` continues pretraining a base (fully).
        text_col: the text column of tables (default: the first of text, content, body ...).

    Raises:
        DataError: no readable text in ``corpus``.
        TrainingError / CheckpointError: as ``train_language_model``.
    """
    from appkit.data import read_corpus, split_conversations
    from appkit.models import resolve_base
    from appkit.train.packing import encode_documents
    from appkit.train.tracking import latest_unfinished_run, run_name, tracked_run

    settings = settings or load_settings()
    options = options or ChatTrainingOptions(device=settings.resolve_device())
    documents, report = read_corpus(corpus, text_col=text_col)
    log(report.summary())
    if options.base:
        options.base = str(resolve_base(options.base, settings))
        options.finetune = "full"  # continued pretraining moves every weight
    # A long document (a book) would otherwise land whole on one side of the split.
    documents = split_long_documents(documents, max_chars=20_000)
    train_docs, val_docs = split_conversations(documents, val_fraction=options.val_fraction, seed=options.seed)
    if resume and name is None:
        name = latest_unfinished_run(settings, APP_NAME, "appkit pretrain")
    name = run_name(APP_NAME, name)

    def encode(tokenizer: Any, context: int) -> tuple[list[Any], list[Any]]:
        return encode_documents(tokenizer, train_docs, context), encode_documents(tokenizer, val_docs, context)

    config = {"corpus": report.paths, "options": options.as_config(), "resume": resume}
    with tracked_run(settings, APP_NAME, name, config, resume=resume, replace=replace) as run:
        trained = train_language_model(
            [d.text for d in train_docs], encode,
            data_print=fingerprint((d.text for d in train_docs), val=len(val_docs), seed=options.seed,
                                   base=options.base),
            unit="chunks", name=name, models_dir=settings.models_dir, runs_dir=settings.runs_dir,
            options=options, resume=resume, log=log,
            extra_metadata={"app": APP_NAME, "corpus": {"documents": len(documents), "characters": report.characters}},
        )
        sources = ", ".join(Path(c).name for c in config["corpus"])
        run.register(trained, data={"corpus": config["corpus"], "documents": len(documents),
                                    "summary": f"{len(documents)} docs ({sources})"})
    log(f"saved {trained.path}; start an app from it with --base {name}")
    return trained


def split_long_documents(documents: Sequence[Any], max_chars: int) -> list[Any]:
    """Cut documents longer than ``max_chars`` at paragraph breaks into parts with their own ids."""
    from dataclasses import replace

    out = []
    for doc in documents:
        if len(doc.text) <= max_chars:
            out.append(doc)
            continue
        parts, current = [], ""
        for paragraph in doc.text.split("\n\n"):
            if current and len(current) + len(paragraph) > max_chars:
                parts.append(current)
                current = ""
            current = f"{current}\n\n{paragraph}" if current else paragraph
        parts.append(current)
        out.extend(replace(doc, id=f"{doc.id}#{i}", text=part) for i, part in enumerate(parts))
    return out
