"""Train a sentiment classifier on labelled texts and make it the sentiment app's active model.

    labelled file -> stratified train/validation split -> tokenizer + encoder (or --base)
    -> appkit's training loop (appkit/train/loop.py): cross-entropy with label smoothing,
       length-bucketed batches, ~10 validations keeping the most accurate weights (an EMA of
       them), early stopping, within the step, epoch or time budget
    -> temperature scaling -> the models blended with it (n-grams, BiLSTM) -> save -> reload
       check -> register as active
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from appkit.config import Settings, load_settings
from appkit.errors import ConfigError, ModelError, TrainingError
from apps.sentiment.data import LabelledTexts, read_labelled, split
from apps.sentiment.labels import polarity
from apps.sentiment.model import predict_logits

APP_NAME = "sentiment"
LSTM_SHARE = 0.25  # of --max-minutes kept from the encoder for the BiLSTM (its epochs are slower)


@dataclass
class SentimentOptions:
    """Choices for ``train_sentiment`` (the CLI's flags)."""

    base: str | None = None  # a causal LM saved by appkit: registered name or directory
    # The from-scratch defaults won a sweep on SST-2 (bench/README.md): a small, heavily
    # regularised encoder beats a bigger one, which overfits within 2 epochs.
    hidden_size: int = 96
    layers: int = 2
    heads: int = 2
    vocab_size: int = 8000
    max_length: int = 128  # tokens per text; longer ones keep head + tail (model.encode)
    dropout: float = 0.3
    epochs: float = 8.0
    batch_size: int = 64
    learning_rate: float | None = None  # 1e-3 from scratch; on a base, base_learning_rate()
    weight_decay: float = 0.01
    adam_beta2: float = 0.98  # the transformer's usual; the BiLSTM uses 0.999 (words.ADAM_BETA2)
    label_smoothing: float = 0.1
    token_dropout: float = 0.15  # share of a text's tokens replaced by [MASK] in training (encoder only)
    ema_decay: float = 0.999  # validate and keep an exponential moving average of the weights (0: off)
    ngrams: bool = True  # train a word n-gram model to blend with the encoder (ngrams.py, blend.py)
    lstm: bool = True  # train a BiLSTM over words and their n-grams to blend with the encoder (words.py, blend.py)
    lstm_epochs: float = 5.0  # the BiLSTM's validation accuracy on SST-2 peaked at epochs 4-5
    val_fraction: float = 0.1
    max_minutes: float | None = None
    max_steps: int | None = None  # given, it replaces the epochs' plan
    patience: int = 4  # validations in a row without a better accuracy before stopping
    seed: int = 0
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    progress: bool = True

    def check(self) -> None:
        """Raise ConfigError for a value no run can use."""
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"--max-minutes must be positive, got {self.max_minutes:g}.")
        if self.epochs <= 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs:g}.")
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError(f"--val-fraction must be between 0 and 0.5, got {self.val_fraction:g}.")
        if self.hidden_size % self.heads:
            raise ConfigError(f"--hidden-size {self.hidden_size} is not divisible by {self.heads} attention heads.")
        if self.max_length < 8:
            raise ConfigError(f"--max-length must be at least 8 tokens, got {self.max_length}.")
        if self.lstm_epochs <= 0:
            raise ConfigError(f"lstm_epochs must be positive, got {self.lstm_epochs:g}.")

    def encoder_minutes(self, max_minutes: float) -> float:
        """The encoder's share of a time budget; the BiLSTM, when trained, gets the rest."""
        return max_minutes * (1 - LSTM_SHARE) if self.lstm else max_minutes

    @staticmethod
    def lstm_minutes(max_minutes: float, spent_minutes: float) -> float:
        """The BiLSTM's budget: what the run has left (an encoder that stopped early leaves it more),
        and at least its share: the tokenizer and the n-grams ran outside the encoder's share too,
        and would otherwise squeeze the BiLSTM."""
        return max(max_minutes - spent_minutes, max_minutes * LSTM_SHARE)


@dataclass
class TrainedSentiment:
    """What ``train_sentiment`` produced."""

    name: str
    path: Path
    labels: tuple[str, ...]
    metrics: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


def train_sentiment(data: str | Path, *, name: str | None = None, options: SentimentOptions | None = None,
                    settings: Settings | None = None, text_col: str | None = None, label_col: str | None = None,
                    encoding: str = "utf-8", replace: bool = False,
                    log: Callable[[str], None] = print) -> TrainedSentiment:
    """Train on ``data`` (CSV/TSV/JSONL/JSON with a text and a label column) and make it active.

    ``replace`` trains a new model in place of the sentiment model called ``name``.

    Raises:
        DataError: the file, its columns or its labels cannot be used (see data.read_labelled).
        ConfigError: an option is out of range.
        ModelError: ``options.base`` is not a loadable causal LM.
    """
    from appkit.models import resolve_base
    from appkit.train.tracking import run_name, tracked_run
    from apps.sentiment.model import set_cpu_wait_policy

    set_cpu_wait_policy()
    settings = settings or load_settings()
    options = options or SentimentOptions()
    options.check()
    labelled = read_labelled(data, text_col=text_col, label_col=label_col, encoding=encoding, warn=log)
    counts = labelled.counts()
    log(f"{labelled.source}: {len(labelled.texts)} texts ({labelled.text_col!r}), labels from {labelled.label_col!r}: "
        + ", ".join(f"{label} {counts[label]}" for label in labelled.classes)
        + (f"  (named: {', '.join(f'{k} -> {v}' for k, v in labelled.renamed.items())})" if labelled.renamed else ""))
    train, val = split(labelled, options.val_fraction, options.seed)
    if len(train.texts) < 4 or not val.texts:
        raise TrainingError(f"{labelled.source}: {len(train.texts)} training and {len(val.texts)} validation texts; "
                            "at least 4 and 1 are needed.")
    base_dir = resolve_base(options.base, settings) if options.base else None
    name = run_name(APP_NAME, name)
    data_info = {"path": str(data), "rows": len(labelled.texts), "train": len(train.texts), "val": len(val.texts),
                 "labels": {label: counts[label] for label in labelled.classes}, "text_col": labelled.text_col,
                 "label_col": labelled.label_col, "renamed": labelled.renamed, "fingerprint": labelled.fingerprint(),
                 "summary": f"{len(labelled.texts)} texts ({Path(data).name})"}
    config = {"data": str(data), "options": asdict(options)}
    with tracked_run(settings, APP_NAME, name, config, data_fingerprint=data_info["fingerprint"],
                     replace=replace) as run:
        path, metrics = fit_and_save(train, val, options, base_dir=base_dir, out_dir=settings.models_dir / name,
                                     run_dir=settings.runs_dir / name, data_info=data_info, log=log)
        run.finish(path, base=str(base_dir) if base_dir else None, preset=metrics["architecture"],
                   params=metrics["parameters"], metrics=metrics, data=data_info)
    log(f"saved {path} and made it the active sentiment model")
    return TrainedSentiment(name, path, labelled.classes, metrics, data_info)


def fit_and_save(train: LabelledTexts, val: LabelledTexts, options: SentimentOptions, *, base_dir: Path | None,
                 out_dir: Path, run_dir: Path, data_info: dict[str, Any], log: Callable[[str], None]) -> tuple[Path, dict[str, Any]]:
    """Train, calibrate and save; returns (saved directory, metrics)."""
    import torch

    started = time.perf_counter()

    from appkit.model.build import count_parameters
    from apps.sentiment import model as M

    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    labels = train.classes
    if base_dir is not None:
        model, tokenizer = M.from_base(base_dir, labels, options.seed)
        architecture = f"{model.config.model_type}-base"
        lr = options.learning_rate or base_learning_rate(count_parameters(model))
    else:
        tokenizer = M.train_wordpiece(train.texts, options.vocab_size, options.max_length)
        model = M.build_encoder(tokenizer, labels, hidden_size=options.hidden_size, layers=options.layers,
                                heads=options.heads, max_length=options.max_length, dropout=options.dropout,
                                seed=options.seed)
        architecture = f"modernbert-{options.layers}x{options.hidden_size}"
        lr = options.learning_rate or 1e-3
    wrapping = M.wrapping_for(tokenizer, model, options.max_length)
    params = count_parameters(model)
    log(f"classifier: {architecture}, {params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, context "
        f"{wrapping.max_length}; {len(train.texts)} training / {len(val.texts)} validation texts")
    train_ids, train_lengths = M.encode(tokenizer, train.texts, wrapping)
    val_ids, _ = M.encode(tokenizer, val.texts, wrapping)
    cut = sum(n > wrapping.max_length for n in train_lengths)
    if cut:
        log(f"warning: {cut} training texts are longer than {wrapping.max_length} tokens and were cut (head + tail).")
    y_train = [labels.index(label) for label in train.labels]
    y_val = [labels.index(label) for label in val.labels]

    budget = options.encoder_minutes(options.max_minutes) if options.max_minutes else None
    state = fit_classifier(model, train_ids, y_train, val_ids, y_val, options, lr=lr, pad_id=wrapping.pad_id,
                           run_dir=run_dir, budget_minutes=budget, title="sentiment classifier",
                           mask_id=tokenizer.mask_token_id if base_dir is None else None)
    log(f"trained {state['steps']} steps in {state['seconds']:.0f}s ({state['stopped']}); best validation accuracy "
        f"{state['best_accuracy']:.4f} at step {state['best_step']}")

    metrics, val_logits = calibrate(model, val_ids, y_val, wrapping.pad_id)
    log(f"calibration: temperature {metrics['temperature']:.3f}; validation ECE {metrics['ece_before']:.4f} -> "
        f"{metrics['ece_after']:.4f}, NLL {metrics['nll_before']:.4f} -> {metrics['nll_after']:.4f}")
    metrics.update(state, architecture=architecture, parameters=params,
                   learning_rate=lr, val_accuracy=round(state["best_accuracy"], 4))
    members, blend = _fit_blend(val_logits, train, val, y_train, y_val, options, run_dir, started, log)
    if blend:
        metrics["blend"] = blend
        if blend["members"]:
            metrics["val_accuracy"] = blend["val_accuracy"]
    metadata = {
        "app": APP_NAME, "format": 1, "kind": "sequence-classifier", "labels": list(labels),
        "temperature": metrics["temperature"], "temperature_folded": True,
        "polarity": polarity(labels), "wrapping": wrapping.as_dict(), "architecture": architecture,
        "blend": {"members": blend["members"], "temperature": blend["temperature"]} if members else None,
        "base": str(base_dir) if base_dir else None, "metrics": metrics, "data": data_info,
        "options": asdict(options), "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    from appkit.model.io import save_model

    def save_members(directory: Path) -> None:
        for member in members:
            member.save(directory)

    path = save_model(model, tokenizer, out_dir, metadata, write_extra=save_members if members else None)
    _verify(path, model, val_ids[:16], wrapping.pad_id)
    return path, metrics


def _fit_blend(val_logits: Any, train: LabelledTexts, val: LabelledTexts, y_train: list[int], y_val: list[int],
               options: SentimentOptions, run_dir: Path, started: float,
               log: Callable[[str], None]) -> tuple[list[Any], dict[str, Any]]:
    """Train the models blended with the encoder and keep those that help on validation.

    ``val_logits``: the calibrated encoder's logits on the validation texts; ``started``: when the
    run began (time.perf_counter; the BiLSTM gets what is left of --max-minutes). Returns (the chosen
    members, the blend's figures from blend.choose_members); ([], {}) when none is trained.
    """
    from apps.sentiment.blend import MEMBER_TITLES, choose_members

    trained: dict[str, Any] = {}
    if options.ngrams:
        trained["ngrams"] = _fit_ngrams(train, y_train, options, log)
    if options.lstm:
        spent = (time.perf_counter() - started) / 60
        budget = options.lstm_minutes(options.max_minutes, spent) if options.max_minutes else None
        trained["lstm"] = _fit_lstm(train, val, y_train, y_val, options, run_dir, budget, log)
    trained = {name: model for name, model in trained.items() if model is not None}
    if not trained:
        return [], {}
    blend = choose_members(val_logits, {n: m.log_probabilities(val.texts) for n, m in trained.items()}, y_val)
    alone = ", ".join(f"{MEMBER_TITLES[n]} {f['val_accuracy']:.4f} ({f['val_nll']:.3f})" for n, f in blend["alone"].items())
    chosen = " + ".join(MEMBER_TITLES[n] for n in ["encoder", *blend["members"]])
    log(f"blend: validation accuracy (log-loss) alone: {alone}; served: {chosen}, {blend['val_accuracy']:.4f} "
        f"({blend['val_nll']:.3f})" + ("" if blend["members"] else ": the encoder alone has the lowest log-loss"))
    return [trained[n] for n in blend["members"]], blend


def _fit_ngrams(train: LabelledTexts, y_train: list[int], options: SentimentOptions,
                log: Callable[[str], None]) -> Any:
    """The n-gram model, or None when sklearn cannot fit these texts."""
    from apps.sentiment.ngrams import NgramClassifier

    started = time.perf_counter()
    try:
        ngram = NgramClassifier.fit(train.texts, y_train, len(train.classes), seed=options.seed, log=log)
    except ValueError as e:  # sklearn refuses degenerate input; the encoder does not need the n-grams
        log(f"n-gram model: not trained ({e}); the encoder is used without it.")
        return None
    log(f"n-gram model: word 1-3-grams trained in {time.perf_counter() - started:.0f}s")
    return ngram


def _fit_lstm(train: LabelledTexts, val: LabelledTexts, y_train: list[int], y_val: list[int],
              options: SentimentOptions, run_dir: Path, budget: float | None, log: Callable[[str], None]) -> Any:
    """The BiLSTM, trained like the encoder with its own settings (words.py) in ``budget`` minutes."""
    import torch

    from appkit.model.build import count_parameters
    from apps.sentiment import words

    torch.manual_seed(options.seed)
    lstm = words.WordLSTM.from_texts(train.texts, len(train.classes))
    # No label smoothing, EMA or token dropout: its dropout on embeddings and the pooled vector regularises it.
    settings = replace(options, epochs=options.lstm_epochs, batch_size=words.BATCH_SIZE, ema_decay=0.0,
                       label_smoothing=0.0, token_dropout=0.0, adam_beta2=words.ADAM_BETA2)
    log(f"BiLSTM: {len(lstm.vocabulary)} words and {lstm.config.buckets} character n-gram buckets, "
        f"{count_parameters(lstm) / 1e6:.2f}M parameters, "
        f"{options.lstm_epochs:g} epochs" + (f" or {budget:.1f} min" if budget else ""))
    state = fit_classifier(lstm, lstm.encode(train.texts), y_train, lstm.encode(val.texts), y_val, settings,
                           lr=words.LEARNING_RATE, pad_id=words.PAD_ID, run_dir=run_dir / "lstm", budget_minutes=budget,
                           title="BiLSTM", ids_per_token=lstm.slots)
    log(f"BiLSTM: trained {state['steps']} steps in {state['seconds']:.0f}s ({state['stopped']}); best validation "
        f"accuracy {state['best_accuracy']:.4f} at step {state['best_step']}")
    return lstm.eval()


def calibrate(model: Any, val_ids: list[list[int]], y_val: list[int], pad_id: int) -> tuple[dict[str, Any], Any]:
    """Fit the temperature on validation, fold it into the model; (ECE and NLL before and after, calibrated logits)."""
    import torch
    import torch.nn.functional as F

    from appkit.safety.metrics import macro_f1
    from apps.sentiment.calibration import expected_calibration_error, fit_temperature, fold_temperature

    logits = predict_logits(model, val_ids, pad_id)
    targets = torch.tensor(y_val)
    t = fit_temperature(logits, targets)
    before, after = logits.softmax(-1), (logits / t).softmax(-1)
    fold_temperature(model, t)
    return {
        "temperature": t,
        "ece_before": round(expected_calibration_error(before.tolist(), y_val), 4),
        "ece_after": round(expected_calibration_error(after.tolist(), y_val), 4),
        "nll_before": round(float(F.cross_entropy(logits, targets)), 4),
        "nll_after": round(float(F.cross_entropy(logits / t, targets)), 4),
        "val_macro_f1": round(macro_f1(y_val, logits.argmax(-1).tolist(), model.config.num_labels), 4),
    }, logits / t


def _verify(path: Path, model: Any, ids: list[list[int]], pad_id: int) -> None:
    """Reload with plain transformers and compare: a key mismatch would silently give random weights."""
    from apps.sentiment.model import load_classifier

    reloaded, _, _ = load_classifier(path)
    a, b = predict_logits(model, ids, pad_id), predict_logits(reloaded, ids, pad_id)
    worst = float((a.softmax(-1) - b.softmax(-1)).abs().max()) if len(ids) else 0.0
    if worst > 1e-4:
        raise ModelError(f"{path}: the saved classifier reloads with different probabilities (max difference "
                         f"{worst:.5f}); it is not usable. Report this with your transformers version.")


def fit_classifier(model: Any, ids: list[list[int]], y: list[int], val_ids: list[list[int]], y_val: list[int],
                   options: SentimentOptions, *, lr: float, pad_id: int, run_dir: Path, budget_minutes: float | None,
                   title: str, mask_id: int | None = None, ids_per_token: int = 1) -> dict[str, Any]:
    """Train ``model`` (the encoder, or the BiLSTM) in appkit's training loop; returns its figures.

    The best weights are the most accurate on validation (ties: the lower log-loss); with
    ``mask_id``, ``options.token_dropout`` of the tokens are masked in training.
    """
    import torch.nn.functional as F

    from appkit.train.batches import TextBatches
    from appkit.train.loop import TrainConfig, Trainer, Validation

    def loss(model: Any, batch: Any, device: Any) -> tuple[Any, float]:
        input_ids = batch.input_ids
        if mask_id is not None and options.token_dropout > 0:
            input_ids = _drop_tokens(input_ids, batch.attention_mask, mask_id, options.token_dropout)
        logits = model(input_ids=input_ids.to(device), attention_mask=batch.attention_mask.to(device)).logits
        return F.cross_entropy(logits, batch.targets.to(device), label_smoothing=options.label_smoothing,
                               reduction="sum"), len(batch.targets)

    def validate(model: Any) -> Validation:
        accuracy, nll = validation_figures(model, val_ids, y_val, pad_id)
        return Validation(nll, score=(-accuracy, nll), figures={"val_accuracy": accuracy})

    # Warmup over the first 5% and cosine to zero; no cap on the warmup's steps.
    cfg = TrainConfig(batch_size=options.batch_size, learning_rate=lr, min_lr_ratio=0.0, warmup_share=0.05,
                      warmup_steps=None, weight_decay=options.weight_decay, betas=(0.9, options.adam_beta2),
                      ema_decay=options.ema_decay, epochs=options.epochs, max_steps=options.max_steps,
                      max_minutes=budget_minutes, patience=options.patience, resumable=False, seed=options.seed,
                      progress=options.progress, title=title)
    batches = TextBatches(ids, y, pad_id, ids_per_token=ids_per_token)
    result = Trainer(model, batches, None, cfg, run_dir, loss=loss, validate=validate).run()
    return {"steps": result.steps, "best_step": result.best_step, "best_accuracy": result.best["val_accuracy"],
            "seconds": round(result.seconds, 1), "stopped": result.stopped,
            "tokens_per_second": round(result.tokens_per_second), "train_minutes": round(result.seconds / 60, 2)}


def validation_figures(model: Any, ids: list[list[int]], y: list[int], pad_id: int) -> tuple[float, float]:
    """(accuracy, log-loss) of ``model`` on labelled texts."""
    import torch
    import torch.nn.functional as F

    logits = predict_logits(model, ids, pad_id)
    target = torch.tensor(y)
    return float((logits.argmax(-1) == target).float().mean()), float(F.cross_entropy(logits, target))


SMALL_BASE_PARAMETERS = 5_000_000


def base_learning_rate(parameters: int) -> float:
    """The default peak learning rate on a base: 1e-4, the usual fine-tuning rate, or 1e-3 for a
    small base such as appkit's nano preset, which 1e-4 barely moves (bench/README.md)."""
    return 1e-3 if parameters < SMALL_BASE_PARAMETERS else 1e-4


def _drop_tokens(input_ids: Any, mask: Any, mask_id: int, p: float) -> Any:
    """Replace a share ``p`` of the real tokens (not [CLS]/[SEP]) with [MASK]."""
    import torch

    inner = mask.clone()
    inner[:, 0] = 0  # [CLS]
    inner[torch.arange(len(mask)), mask.sum(1) - 1] = 0  # [SEP]
    hit = (torch.rand(input_ids.shape) < p) & inner.bool()
    return input_ids.masked_fill(hit, mask_id)
