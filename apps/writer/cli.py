"""``appkit writer train | write | eval`` (also ``appkit train-writer`` and ``appkit write``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from appkit.eval.cli import JsonOut, Models
from appkit.train.cli_options import (
    Base, BatchSize, Compile, Epochs, Finetune, LearningRate, MaxMinutes, MaxSteps, Name, Preset, Replace, Resume,
    Seed, training_options,
)


writer_cli = typer.Typer(no_args_is_help=True,
                         help="Drafts blog posts, social posts, emails and product copy in your brand's voice.")


@writer_cli.command("train")
def train_writer_command(
    ctx: typer.Context,
    corpus: list[Path] = typer.Option(..., "--corpus", help="Your articles: a folder (searched recursively) or files of "
                                      "Markdown with YAML front matter, text, or CSV/JSONL with a text column. Repeatable."),
    preset: Preset = "auto",
    base: Base = None,
    finetune: Finetune = "lora",
    max_minutes: MaxMinutes = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = 10.0,
    name: Name = None,
    resume: Resume = False,
    replace: Replace = False,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    seed: Seed = 0,
    compile: Compile = None,
    holdout: float = typer.Option(0.1, "--holdout", help="Share of the newest articles kept out of training, "
                                  "for `appkit writer eval` (0 = train on all)."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="The text column of CSV/JSONL corpora."),
    keep_links: bool = typer.Option(False, "--keep-links", help="Train on link addresses, images and HTML as written "
                                    "(default: links keep only their words, so drafts hold no made-up addresses)."),
) -> None:
    """Learn a brand's voice from its own articles and make it the active writer model."""
    from appkit.config import settings_from
    from apps.writer.train import train_writer

    settings = settings_from(ctx)
    options = training_options(
        settings, preset=preset, base=base, finetune=finetune, max_minutes=max_minutes, max_steps=max_steps,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed, compile=compile,
    )
    train_writer(corpus, name=name, options=options, holdout=holdout, text_col=text_col, keep_links=keep_links,
                 resume=resume, replace=replace, settings=settings, log=typer.echo)


@writer_cli.command("write")
def write_command(
    ctx: typer.Context,
    title: str = typer.Option(..., "--title", help="What the piece is called (and about)."),
    format: str = typer.Option("blog", "--format", help="blog, social, email or product."),
    tone: Optional[str] = typer.Option(None, "--tone", help="e.g. friendly, formal, playful."),
    words: Optional[int] = typer.Option(None, "--words", help="Target length in words, 20-2000 (default by format: "
                                        "blog 400, social 60, email 200, product 120)."),
    variants: int = typer.Option(1, "--variants", help="Write this many different drafts (1-8)."),
    tag: Optional[list[str]] = typer.Option(None, "--tag", help="A topic tag, as in your articles' front matter. Repeatable."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the Markdown to this file (replaced whole)."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model name or a model directory (default: the active writer)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, help="Sampling temperature (default 0.8)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Make the draft reproducible."),
) -> None:
    """Draft a piece in your brand's voice: printed as Markdown, stored, and written to --out."""
    from dataclasses import replace

    from appkit.apps import load_app
    from appkit.config import settings_from
    from apps.writer.brief import make_brief

    # Everything a user can get wrong is checked before the model loads or anything is written.
    make_brief(title, format, tone, words, tag or ())
    if not 1 <= variants <= 8:
        from appkit.errors import ConfigError

        raise ConfigError(f"--variants must be between 1 and 8, got {variants}.")
    if out is not None:
        _check_out(out)
    writer = load_app("writer", model=model, settings=settings_from(ctx))
    try:
        params = writer.params if temperature is None else replace(writer.params, temperature=temperature)
        if variants == 1:
            stream = writer.stream(title, format, tone, words, tags=tag or (), seed=seed, params=params)
            for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            drafts = [stream.draft]
        else:
            drafts = writer.write(title, format, tone, words, variants=variants, tags=tag or (), seed=seed,
                                  params=params)
            for i, d in enumerate(drafts):
                sys.stdout.write(("\n---\n\n" if i else "") + d.text + "\n")
    finally:
        writer.close()
    target = drafts[0].brief["words"]
    for i, d in enumerate(drafts):
        which = f"variant {i + 1}/{len(drafts)}: " if len(drafts) > 1 else ""
        error = (d.words - target) / target
        typer.echo(f"[{which}{d.words} words (target {target}, {error:+.0%}); document {d.document_id}; "
                   f"model {d.model_name}; safety: {d.safety}]", err=True)
    if out is not None:
        from appkit.files import write_text_atomic

        write_text_atomic(out, "\n\n---\n\n".join(d.text for d in drafts) + "\n")
        typer.echo(f"[written to {out}]", err=True)


@writer_cli.command("eval")
def eval_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="The corpus the model was trained on: its held-out articles are scored."),
    model: Models = None,
    other: Optional[Path] = typer.Option(None, "--other", help="Text in another voice, whose perplexity is compared with the brand's."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most this many held-out articles (default 300)."),
    json_out: JsonOut = None,
) -> None:
    """Score models on held-out articles: the brand voice's perplexity (vs. another voice) and length control."""
    from appkit.config import settings_from
    from appkit.eval.cli import run_eval

    run_eval("writer", data=data, models=model, settings=settings_from(ctx), json_out=json_out, other=other,
             limit=limit)


def _check_out(out: Path) -> None:
    from appkit.errors import ConfigError

    if out.is_dir():
        raise ConfigError(f"--out {out}: that is a folder; give a file name, e.g. {out / 'draft.md'}.")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist.")

