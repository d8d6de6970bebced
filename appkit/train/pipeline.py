"""From conversations to a saved chat model: curate -> split -> tokenizer -> model -> train -> save.

App-agnostic: the support app (and any user app) hands conversations in and gets a saved
Hugging Face directory back, plus everything worth recording about how it was made.
Files a run writes: ``<runs>/<name>/`` holds the tokenizer, checkpoints, metrics.jsonl and
loss.png (kept for --resume and inspection); ``<models>/<name>/`` is the finished model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appkit.data import Conversation, CurationReport, curate, split_conversations
from appkit.errors import CheckpointError, TrainingError
from appkit.files import write_json_atomic

RUN_FILE = "run.json"


@dataclass
class ChatTrainingOptions:
    """Choices a user makes when training a chat model (the CLI flags)."""

    preset: str = "auto"
    base: str | None = None  # a local HF checkpoint directory to start from
    finetune: str = "lora"  # with a base: "lora" (an adapter, merged on save) or "full" (every weight)
    lora_rank: int = 16
    max_minutes: float | None = None
    max_steps: int | None = None
    epochs: float = 10.0
    batch_size: int | None = None
    learning_rate: float | None = None
    val_fraction: float = 0.1
    max_turn_chars: int = 2000
    scrub_pii: bool = True
    seed: int = 0
    device: str = "cpu"
    compile: bool | None = None  # None: where it pays (appkit.train.loop.COMPILE_PAYS_AFTER_S)
    progress: bool = True
    is_toxic: Callable[[str], bool] | None = field(default=None, repr=False)
    keep_toxic: bool = False

    def as_config(self) -> dict[str, Any]:
        """The options as JSON-able values, for the runs table."""
        return {k: v for k, v in vars(self).items() if k != "is_toxic"}


@dataclass
class TrainedChatModel:
    """What a finished run produced."""

    name: str
    path: Path
    run_dir: Path
    preset: str
    base: str | None
    parameters: int
    metrics: dict[str, Any]
    curation: CurationReport
    data: dict[str, Any]
    train_conversations: list[Conversation] = field(default_factory=list)
    val_conversations: list[Conversation] = field(default_factory=list)


TrainedModel = TrainedChatModel  # what a trainer returns, whatever it trained on


def fingerprint(texts: Iterable[str], **settings: Any) -> str:
    """A short hash of the training data and the settings that shape it."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for text in texts:
        h.update(text.encode())
        h.update(b"\x01")
    return h.hexdigest()[:16]


def prepare_conversations(
    conversations: Sequence[Conversation], options: ChatTrainingOptions, log: Callable[[str], None] = print
) -> tuple[list[Conversation], list[Conversation], CurationReport]:
    """Curate ``conversations`` and split them into (train, validation) by conversation.

    Raises:
        TrainingError: fewer than two usable conversations remain.
    """
    curated, report = curate(
        conversations, max_turn_chars=options.max_turn_chars, scrub_pii=options.scrub_pii,
        is_toxic=options.is_toxic, toxic="keep" if options.keep_toxic else "drop", seed=options.seed,
    )
    log(report.summary())
    if len(curated) < 2:
        raise TrainingError(
            f"only {len(curated)} usable conversation(s) after curation; at least 2 are needed "
            "(one to train on, one to validate)."
        )
    train, val = split_conversations(curated, val_fraction=options.val_fraction, seed=options.seed)
    return train, val, report


def train_chat_model(
    train_convs: Sequence[Conversation],
    val_convs: Sequence[Conversation],
    *,
    name: str,
    models_dir: Path,
    runs_dir: Path,
    options: ChatTrainingOptions,
    curation: CurationReport | None = None,
    extra_metadata: dict[str, Any] | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> TrainedChatModel:
    """Train a chat model on prepared conversations and save it to ``models_dir/name``.

    Raises:
        TrainingError: nothing usable to train on, or invalid budgets.
        CheckpointError: ``resume`` without a matching interrupted run.
    """
    from appkit.train.packing import encode_examples

    def encode(tokenizer: Any, context: int) -> tuple[list[Any], list[Any]]:
        return encode_examples(tokenizer, train_convs, context), encode_examples(tokenizer, val_convs, context)

    trained = train_language_model(
        [t.text for c in train_convs for t in c.turns], encode,
        data_print=fingerprint((f"{t.role}\x00{t.text}" for c in train_convs for t in c.turns),
                               val=len(val_convs), seed=options.seed, base=options.base),
        unit="conversations", name=name, models_dir=models_dir, runs_dir=runs_dir, options=options,
        curation=curation, extra_metadata=extra_metadata, resume=resume, log=log,
    )
    trained.train_conversations, trained.val_conversations = list(train_convs), list(val_convs)
    trained.metrics.update(train_conversations=len(train_convs), val_conversations=len(val_convs))
    trained.data["conversations"] = len(train_convs) + len(val_convs)
    return trained


Encoder = Callable[[Any, int], tuple[list[Any], list[Any]]]  # (tokenizer, context) -> (train, val) examples


def train_language_model(
    texts: Sequence[str],
    encode: Encoder,
    *,
    data_print: str,
    unit: str,
    name: str,
    models_dir: Path,
    runs_dir: Path,
    options: ChatTrainingOptions,
    curation: CurationReport | None = None,
    extra_metadata: dict[str, Any] | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> TrainedChatModel:
    """The shared path of every trainer: tokenizer -> model -> packed rows -> Trainer -> saved model.

    Args:
        texts: the training text (the tokenizer is trained on it when no base is given).
        encode: turns the training and validation data into Examples once the tokenizer exists.
        data_print: fingerprint of data + settings; ``resume`` refuses a run made on other data.
        unit: what one example is, for the log ("conversations", "chunks").
    """
    from appkit.model.build import count_parameters
    from appkit.model.io import save_model
    from appkit.train.loop import Trainer
    from appkit.train.packing import PackedDataset

    _check_budgets(options)
    from appkit.train.tracking import check_name

    report = curation or CurationReport()
    run_dir = runs_dir / check_name(name)  # a name is one folder: never a path out of runs_dir
    run_info = _prepare_run_dir(run_dir, data_print, options, resume)

    model, tokenizer, preset_name, context, defaults = _model_and_tokenizer(texts, options, run_dir, resume, log)
    train_examples, val_examples = encode(tokenizer, context)
    if not train_examples:
        raise TrainingError(f"nothing to train on: no training {unit} left after tokenizing.")
    pad = tokenizer.pad_token_id
    train_data = PackedDataset(train_examples, context, pad)
    val_data = PackedDataset(val_examples, context, pad) if val_examples else None
    params = count_parameters(model)
    log(
        f"model: {preset_name}, {params / 1e6:.2f}M parameters, context {context}, vocabulary {len(tokenizer)}; "
        f"data: {len(train_examples)} train / {len(val_examples)} validation {unit}, "
        f"{train_data.n_tokens:,} train tokens in {len(train_data.rows)} rows "
        f"({train_data.padding_fraction:.1%} padding)"
    )
    cfg = _train_config(options, defaults)
    run_info.update({"preset": preset_name, "config": asdict(cfg)})
    write_json_atomic(run_dir / RUN_FILE, run_info)

    started = time.time()
    result = Trainer(model, train_data, val_data, cfg, run_dir).run(resume=resume)
    validation = (f"validation loss {result.best_val_loss} (perplexity {result.val_perplexity})"
                  if result.best_val_loss is not None else f"no validation figure: no validation {unit} to score")
    log(
        f"trained {result.steps} steps ({result.epochs} epochs, stopped: {result.stopped}) in "
        f"{result.seconds:.0f}s at {result.tokens_per_second:,.0f} tokens/s; {validation}"
        + (f"; {result.compile_note}" if result.compile_note else "")
    )

    metrics = {**result.as_dict(), f"train_{unit}": len(train_examples), f"val_{unit}": len(val_examples)}
    data = {"fingerprint": data_print, "train_tokens": train_data.n_tokens,
            "examples": len(train_examples) + len(val_examples)}
    metadata = {"appkit_format": 1, "name": name, "preset": preset_name, "base": options.base,
                "finetune": options.finetune if options.base else None, "parameters": params,
                "context_length": context, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "data": data, "metrics": metrics, "curation": report.as_dict(), "train_config": asdict(cfg),
                **(extra_metadata or {})}
    path = save_model(model, tokenizer, models_dir / name, metadata)
    return TrainedChatModel(name, path, run_dir, preset_name, options.base, params, metrics, report, data)


def _prepare_run_dir(run_dir: Path, data_print: str, options: ChatTrainingOptions, resume: bool) -> dict[str, Any]:
    """Check a resumed run matches its data; start a fresh run directory otherwise."""
    info_path = run_dir / RUN_FILE
    if resume:
        if not info_path.is_file():
            raise CheckpointError(
                f"--resume: no interrupted run at {run_dir}. Check --name, or run without --resume to start fresh."
            )
        info = json.loads(info_path.read_text())
        if info.get("data_fingerprint") != data_print:
            raise CheckpointError(
                f"--resume: the run in {run_dir} was trained on different data or settings "
                f"(fingerprint {info.get('data_fingerprint')}, now {data_print}). "
                "Use the same --history and flags, or run without --resume."
            )
        return info
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return {"data_fingerprint": data_print, "base": options.base, "seed": options.seed}


def _model_and_tokenizer(
    texts: Sequence[str], options: ChatTrainingOptions, run_dir: Path, resume: bool, log: Callable[[str], None],
) -> tuple[Any, Any, str, int, dict[str, Any]]:
    """Build (or load a base for) the model and tokenizer; returns (model, tokenizer, preset name, context, defaults)."""
    from transformers import AutoTokenizer

    from appkit.model.build import add_lora, build_model, load_base
    from appkit.model.presets import auto_preset, get_preset
    from appkit.tokenizer import chat_control_ids, train_tokenizer

    tok_dir = run_dir / "tokenizer"
    if options.base:
        model, tokenizer = load_base(options.base)  # with the family's chat template, or appkit's added
        context = min(int(getattr(model.config, "max_position_embeddings", 2048)), 2048)
        if options.finetune == "full":
            # Every weight moves, so the learning rate is a fine-tune's, well below from-scratch.
            return model, tokenizer, "full", context, {"batch_size": 8, "learning_rate": 3e-4}
        model = add_lora(model, rank=options.lora_rank, train_token_ids=chat_control_ids(tokenizer))
        return model, tokenizer, "lora", context, {"batch_size": 8, "learning_rate": 5e-4}

    if resume and tok_dir.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    else:
        tokenizer = train_tokenizer(texts)
        tokenizer.save_pretrained(tok_dir)
    if options.preset == "auto":
        approx_tokens = sum(len(t) for t in texts) // 4
        preset = auto_preset(approx_tokens, options.device, options.max_minutes)
        log(f"preset auto -> {preset.name} (about {approx_tokens:,} training tokens on {options.device})")
    else:
        preset = get_preset(options.preset)
    model = build_model(preset, tokenizer, seed=options.seed)
    return model, tokenizer, preset.name, preset.context_length, {
        "batch_size": preset.batch_size, "learning_rate": preset.learning_rate}


def _check_budgets(options: ChatTrainingOptions) -> None:
    from appkit.model.presets import get_preset

    if options.preset != "auto" and not options.base:
        get_preset(options.preset)  # an unknown name fails here, before anything is written
    if options.finetune not in ("lora", "full"):
        raise TrainingError(f"--finetune must be lora or full, got {options.finetune!r}.")
    if options.max_steps is not None and options.max_steps < 1:
        raise TrainingError(f"--max-steps must be at least 1, got {options.max_steps}.")
    if options.max_minutes is not None and options.max_minutes <= 0:
        raise TrainingError(f"--max-minutes must be positive, got {options.max_minutes}.")
    if options.epochs <= 0:
        raise TrainingError(f"--epochs must be positive, got {options.epochs}.")


def _train_config(options: ChatTrainingOptions, defaults: dict[str, Any]) -> Any:
    from appkit.train.loop import TrainConfig

    return TrainConfig(
        batch_size=options.batch_size or defaults["batch_size"],
        learning_rate=options.learning_rate or defaults["learning_rate"],
        epochs=options.epochs,
        max_steps=options.max_steps,
        max_minutes=options.max_minutes,
        compile=options.compile,
        seed=options.seed,
        device=options.device,
        progress=options.progress,
    )
