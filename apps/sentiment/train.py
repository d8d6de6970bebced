"""Train a sentiment classifier on labelled texts and make it the sentiment app's active model.

    labelled file -> stratified train/validation split -> tokenizer + encoder (or --base)
    -> cross-entropy with label smoothing, AdamW, warmup + cosine over the step or time budget
    -> ~10 validations, keep the best, stop early -> temperature scaling -> save -> reload check
    -> register as active

The loop is written out (nothing hidden): length-bucketed batches, so short phrases are not
padded to the longest text in a random batch (SST-2: ~2x fewer tokens per epoch than random
batches, measured in the bench).
"""

from __future__ import annotations

import contextlib
import math
import random
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
LSTM_SHARE = 0.25  # of --max-minutes kept from the encoder for the BiLSTM: SST-2's 5 epochs take ~3-5 minutes


@dataclass
class SentimentOptions:
    """Choices for ``train_sentiment`` (the CLI's flags)."""

    base: str | None = None  # a causal LM saved by appkit: registered name or directory
    # The from-scratch defaults are the best of a ~25-run sweep on SST-2 (67k phrases, dev
    # accuracy): a small, heavily regularised encoder beats a bigger one, which overfits within
    # 2 epochs (3x192, 16k vocabulary, dropout 0.1, no EMA: 78.9-79.2% on 3 seeds; these:
    # 80.4-81.5% on 4 runs). Longer runs, 3-4 layers or a masked-LM warm-up did not do better.
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
    mlm_minutes: float = 0.0  # masked-LM warm-up of the encoder on the training texts (pretrain.py), part of max_minutes
    mlm_learning_rate: float = 1e-3
    ema_decay: float = 0.999  # validate and keep an exponential moving average of the weights (0: off)
    ngrams: bool = True  # train a word n-gram model to blend with the encoder (ngrams.py, blend.py)
    lstm: bool = True  # train a BiLSTM over words and their n-grams to blend with the encoder (words.py, blend.py)
    lstm_epochs: float = 5.0  # the BiLSTM's peak validation accuracy on SST-2 came at epochs 4-5
    val_fraction: float = 0.1
    max_minutes: float | None = None
    max_steps: int | None = None
    evaluations: int = 10  # validations spread over the run (by steps or by time, whichever ends it)
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
        if self.max_minutes is not None and self.mlm_minutes >= self.encoder_minutes(self.max_minutes):
            raise ConfigError(f"the masked-LM warm-up ({self.mlm_minutes:g} min) must leave time for training within "
                              f"--max-minutes {self.max_minutes:g}.")
        if self.max_length < 8:
            raise ConfigError(f"--max-length must be at least 8 tokens, got {self.max_length}.")
        if self.lstm_epochs <= 0:
            raise ConfigError(f"lstm_epochs must be positive, got {self.lstm_epochs:g}.")

    def encoder_minutes(self, max_minutes: float) -> float:
        """The encoder's share of a time budget (warm-up included); the BiLSTM, when trained, gets the rest."""
        return max_minutes * (1 - LSTM_SHARE) if self.lstm else max_minutes

    @staticmethod
    def lstm_minutes(max_minutes: float, spent_minutes: float) -> float:
        """The BiLSTM's budget: what the run has left (an encoder that stopped early leaves it more),
        and at least its share: the tokenizer and the n-grams (30 s on 25k tweets) ran outside the
        encoder's share too, and would otherwise squeeze the BiLSTM."""
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
    warm: dict[str, Any] = {}
    if base_dir is None and options.mlm_minutes > 0:
        from apps.sentiment.data import containment_groups
        from apps.sentiment.pretrain import warm_up_encoder

        groups = containment_groups(train.texts)
        whole = [train_ids[i] for i, g in enumerate(groups) if g == i]
        warm = warm_up_encoder(model, whole, seconds=options.mlm_minutes * 60, batch_size=options.batch_size,
                               lr=options.mlm_learning_rate, mask_id=tokenizer.mask_token_id, pad_id=wrapping.pad_id,
                               first_regular=len(M.SPECIALS), seed=options.seed)
        log(f"masked-LM warm-up: {warm['mlm_steps']} steps on {warm['mlm_texts']} whole texts in "
            f"{warm['mlm_seconds']:.0f}s, loss {warm['mlm_loss']:.3f}")
    y_train = [labels.index(label) for label in train.labels]
    y_val = [labels.index(label) for label in val.labels]

    mask_id = tokenizer.mask_token_id if base_dir is None else None
    budget = options.encoder_minutes(options.max_minutes) - options.mlm_minutes if options.max_minutes else None
    loop = _Loop(model, options, lr, wrapping.pad_id, run_dir, mask_id, budget)
    state = loop.run(train_ids, y_train, val_ids, y_val)
    log(f"trained {state['steps']} steps in {state['seconds']:.0f}s ({state['stopped']}); best validation accuracy "
        f"{state['best_accuracy']:.4f} at step {state['best_step']}")

    metrics, val_logits = calibrate(model, val_ids, y_val, wrapping.pad_id)
    log(f"calibration: temperature {metrics['temperature']:.3f}; validation ECE {metrics['ece_before']:.4f} -> "
        f"{metrics['ece_after']:.4f}, NLL {metrics['nll_before']:.4f} -> {metrics['nll_after']:.4f}")
    metrics.update(state, **warm, architecture=architecture, parameters=params,
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
    """The BiLSTM, trained by the encoder's loop with its own settings (words.py) in ``budget`` minutes."""
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
    state = _Loop(lstm, settings, words.LEARNING_RATE, words.PAD_ID, run_dir / "lstm", None, budget, "BiLSTM").run(
        lstm.encode(train.texts), y_train, lstm.encode(val.texts), y_val)
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


class _Loop:
    """The training loop: one object so the run's state is in one place."""

    def __init__(self, model: Any, options: SentimentOptions, lr: float, pad_id: int, run_dir: Path,
                 mask_id: int | None = None, budget_minutes: float | None = None, title: str = "sentiment classifier") -> None:
        self.model, self.options, self.lr, self.pad_id, self.run_dir = model, options, lr, pad_id, run_dir
        self.mask_id, self.budget_minutes, self.title = mask_id, budget_minutes, title

    def run(self, ids: list[list[int]], y: list[int], val_ids: list[list[int]], y_val: list[int]) -> dict[str, Any]:
        import torch

        from appkit.train.loop import _Progress
        from appkit.train.report import MetricsLog, plot_loss

        o, model = self.options, self.model
        rng = random.Random(o.seed)
        steps_per_epoch = math.ceil(len(ids) / o.batch_size)
        total = max(1, int(steps_per_epoch * o.epochs))
        if o.max_steps is not None:
            total = min(total, o.max_steps)
        budget = self.budget_minutes * 60 if self.budget_minutes else None
        optimizer = torch.optim.AdamW(_param_groups(model, o.weight_decay), lr=self.lr, betas=(0.9, o.adam_beta2))
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=o.label_smoothing)
        log = MetricsLog(self.run_dir / "metrics.jsonl")
        started = time.perf_counter()
        step, tokens, smoothed, stopped = 0, 0, None, "epochs"
        best: dict[str, Any] = {"accuracy": -1.0, "nll": math.inf, "step": 0, "state": None}
        evals_done, since_best = 0, 0
        ema = _Ema(model, o.ema_decay) if o.ema_decay > 0 else None
        model.train()
        with _Progress(total, enabled=o.progress) as bar:
            while stopped == "epochs":
                for batch in _bucketed(ids, o.batch_size, rng):
                    done = self._progress(step, total, started, budget)
                    for group in optimizer.param_groups:
                        group["lr"] = self.lr * _schedule(done)
                    input_ids, mask = _pad(ids, batch, self.pad_id)  # (B, T)
                    if self.mask_id is not None and o.token_dropout > 0:
                        input_ids = _drop_tokens(input_ids, mask, self.mask_id, o.token_dropout)
                    target = torch.tensor([y[i] for i in batch])
                    loss = loss_fn(model(input_ids=input_ids, attention_mask=mask).logits, target)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    if ema is not None:
                        ema.update()
                    step += 1
                    tokens += int(mask.sum()) // getattr(model, "slots", 1)  # the BiLSTM: ids per word
                    smoothed = loss.item() if smoothed is None else 0.95 * smoothed + 0.05 * loss.item()
                    elapsed = time.perf_counter() - started
                    if budget is not None and step % 200 == 20:  # the bar's end, once the speed is known
                        bar.set_total(min(total, max(step + 1, int(step * budget / elapsed))))
                    bar.advance(step)
                    bar.show(loss=smoothed, tps=tokens / max(elapsed, 1e-9))
                    done = self._progress(step, total, started, budget)
                    if done >= (evals_done + 1) / o.evaluations or done >= 1.0:
                        evals_done = int(done * o.evaluations) if done < 1.0 else o.evaluations
                        with ema.swapped() if ema is not None else contextlib.nullcontext():
                            accuracy, nll = self._validate(val_ids, y_val)
                            snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        log.write({"step": step, "loss": smoothed, "val_loss": nll, "val_accuracy": accuracy,
                                   "seconds": round(elapsed, 1)})
                        if (accuracy, -nll) > (best["accuracy"], -best["nll"]):
                            best = {"accuracy": accuracy, "nll": nll, "step": step, "state": snapshot}
                            since_best = 0
                        else:
                            since_best += 1
                        if since_best >= o.patience:
                            stopped = f"early stop: no better validation accuracy in {o.patience} validations"
                    if done >= 1.0 and stopped == "epochs":
                        stopped = "time budget" if budget is not None and elapsed >= budget else "planned steps"
                    if stopped != "epochs":
                        break
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        seconds = time.perf_counter() - started
        plot_loss(log.records(), self.run_dir / "loss.png", title=f"{self.title}: loss")
        return {"steps": step, "best_step": best["step"], "best_accuracy": best["accuracy"], "seconds": round(seconds, 1),
                "stopped": stopped, "tokens_per_second": round(tokens / max(seconds, 1e-9)),
                "train_minutes": round(seconds / 60, 2)}

    @staticmethod
    def _progress(step: int, total: int, started: float, budget: float | None) -> float:
        """How far the run is, 0..1: by steps, or by time when a budget would end it sooner."""
        done = step / total
        if budget is not None:
            done = max(done, (time.perf_counter() - started) / budget)
        return min(1.0, done)

    def _validate(self, val_ids: list[list[int]], y_val: list[int]) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        logits = predict_logits(self.model, val_ids, self.pad_id)
        self.model.train()
        target = torch.tensor(y_val)
        return float((logits.argmax(-1) == target).float().mean()), float(F.cross_entropy(logits, target))


class _Ema:
    """An exponential moving average of the weights, swapped in for validation and saving.

    The decay ramps up as (1 + n) / (10 + n) over the first updates (TensorFlow's
    ExponentialMovingAverage with num_updates): a short run on a small data set (a few dozen
    steps) would otherwise validate and keep weights still 97% made of the random init.
    """

    def __init__(self, model: Any, decay: float) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay
        self.updates = 0

    def update(self) -> None:
        import torch

        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @contextlib.contextmanager
    def swapped(self) -> Any:
        import torch

        with torch.no_grad():
            live = [p.detach().clone() for p in self.params]
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
            try:
                yield
            finally:
                for p, v in zip(self.params, live):
                    p.copy_(v)


SMALL_BASE_PARAMETERS = 5_000_000


def base_learning_rate(parameters: int) -> float:
    """The default peak learning rate on a base: 1e-4, the usual fine-tuning rate, or 1e-3 for a
    small base such as appkit's nano preset, which 1e-4 barely moves (3,000 labelled SST
    sentences on a 1.15M-parameter base: 65.4% on SST-2 dev at 1e-4, 69.3% at 1e-3)."""
    return 1e-3 if parameters < SMALL_BASE_PARAMETERS else 1e-4


def _schedule(done: float, warmup: float = 0.05) -> float:
    """Learning-rate factor: linear warmup over the first 5%, then cosine to zero."""
    if done < warmup:
        return (done + 1e-3) / warmup
    return 0.5 * (1 + math.cos(math.pi * (done - warmup) / (1 - warmup)))


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on embeddings, norms and biases (decaying them only hurts small models)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _bucketed(ids: list[list[int]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length in random order: sort by length plus noise, cut, shuffle the batches."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]) + 4 * rng.random())
    batches = [order[b:b + batch_size] for b in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _drop_tokens(input_ids: Any, mask: Any, mask_id: int, p: float) -> Any:
    """Replace a share ``p`` of the real tokens (not [CLS]/[SEP]) with [MASK]."""
    import torch

    inner = mask.clone()
    inner[:, 0] = 0  # [CLS]
    inner[torch.arange(len(mask)), mask.sum(1) - 1] = 0  # [SEP]
    hit = (torch.rand(input_ids.shape) < p) & inner.bool()
    return input_ids.masked_fill(hit, mask_id)


def _pad(ids: list[list[int]], batch: list[int], pad_id: int) -> tuple[Any, Any]:
    from apps.sentiment.model import pad

    return pad([ids[i] for i in batch], pad_id)
