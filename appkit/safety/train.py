"""Train a small toxicity classifier from labelled text, saved in detoxify's checkpoint format.

    labelled data (data.py) -> split -> byte-level BPE tokenizer -> BERT from scratch
    -> multi-label sigmoid training (like detoxify) -> APPKIT_HOME/safety/<name>/ -> verified reload

The directory written: ``detoxify.ckpt`` (the dict detoxify loads), ``hf/`` (config.json and
the tokenizer, so detoxify loads offline) and ``safety.json`` (labels, metrics, data, options).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appkit.errors import SafetyError, TrainingError
from appkit.safety.data import LabelledData, split_indices, subset
from appkit.safety.detox import CHECKPOINT_FILE, HF_DIR

METADATA_FILE = "safety.json"


@dataclass
class ClassifierOptions:
    """Choices for ``train_classifier`` (the CLI flags)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    max_length: int = 128  # model positions; longer texts are scored in windows (detox.py)
    vocab_size: int = 8000
    epochs: float = 4.0
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    max_minutes: float | None = None
    max_steps: int | None = None
    seed: int = 0
    mitigate_identity: bool = True
    # Fold the validation-F1-best threshold of each label into its output bias, so 0.5 (the
    # policy's default) is that threshold when served through detoxify (see calibrate()).
    calibrate: bool = True
    # Ordinary support sentences as non-toxic examples (neutral.py): without them a model trained
    # on tweets flags ordinary support replies (see neutral.py for the measurement).
    support_examples: int = 1500
    # Weight positives of rare labels by sqrt(negatives/positives), at most 10: on Davidson, hate
    # (6% of tweets) goes from F1 0.00 to ~0.4 at threshold 0.5 (weighted F1 0.88 -> ~0.90).
    balance: bool = True
    threads: int | None = None  # torch intra-op threads; 1 is fastest on a busy machine (4x, measured)
    progress: bool = True


@dataclass
class TrainedClassifier:
    """What ``train_classifier`` produced; ``model``/``tokenizer`` stay in memory for evaluation."""

    name: str
    path: Path
    labels: tuple[str, ...]
    metrics: dict[str, Any]
    model: Any = field(repr=False, default=None)
    tokenizer: Any = field(repr=False, default=None)

    def score(self, texts: Sequence[str], batch_size: int = 64) -> list[dict[str, float]]:
        """Scores from the in-memory model (the same numbers detoxify gives for the saved one)."""
        return predict(self.model, self.tokenizer, self.labels, list(texts), batch_size)


# --- tokenizer and model -----------------------------------------------------------------------


def train_classifier_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int) -> Any:
    """Byte-level BPE with [CLS] ... [SEP]; normalisation (lower-case, @user, URL) lives in it.

    The normalisation is part of tokenizer.json, so detoxify applies exactly what training saw.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"https?://\S+|www\.\S+"), " url "),
        normalizers.Replace(Regex(r"@\w+"), "@user"),
        normalizers.Replace(Regex(r"&amp;"), "&"),
        normalizers.Replace(Regex(r"&#\d+;|&\w+;"), " "),
        normalizers.Replace(Regex(r"(\S)\1{3,}"), "$1$1$1"),  # "soooooo" and "!!!!!!!" -> three
    ])
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = core.token_to_id("[CLS]"), core.token_to_id("[SEP]")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length, padding_side="right", truncation_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )


def build_classifier(tokenizer: Any, labels: Sequence[str], options: ClassifierOptions) -> Any:
    """A BertForSequenceClassification from scratch, multi-label (sigmoid per label)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=options.hidden_size, num_hidden_layers=options.num_layers,
        num_attention_heads=options.num_heads, intermediate_size=4 * options.hidden_size,
        max_position_embeddings=options.max_length, type_vocab_size=2, pad_token_id=tokenizer.pad_token_id,
        num_labels=len(labels), problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(options.seed)
    return BertForSequenceClassification(config)


def predict(model: Any, tokenizer: Any, labels: Sequence[str], texts: list[str], batch_size: int = 64) -> list[dict[str, float]]:
    """Sigmoid scores per label, exactly as detoxify computes them (same tokenizer call)."""
    import torch

    model.eval()
    out: list[dict[str, float]] = [{} for _ in texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", truncation=True, padding=True)
            probs = torch.sigmoid(model(**enc).logits)  # (B, L)
            for row, i in zip(probs.tolist(), idx):
                out[i] = {label: float(p) for label, p in zip(labels, row)}
    return out


# --- training ----------------------------------------------------------------------------------


def train_classifier(data: LabelledData, *, name: str, out_root: Path, options: ClassifierOptions | None = None,
                     val: LabelledData | None = None, neutral: Sequence[str] = (),
                     log: Callable[[str], None] = print) -> TrainedClassifier:
    """Train on ``data`` (a validation split is cut from it unless ``val`` is given) and save.

    ``neutral``: more texts known to be non-toxic (e.g. the team's own tickets), added to training.

    Raises:
        TrainingError: too little data, or a label that never occurs.
        SafetyError: the saved checkpoint does not reload through detoxify with the same scores.
    """
    import torch

    from appkit.safety.identity import training_sentences
    from appkit.safety.neutral import support_sentences

    options = options or ClassifierOptions()
    if options.max_minutes is not None and options.max_minutes <= 0:
        raise TrainingError(f"--max-minutes must be positive, got {options.max_minutes}.")
    if val is None:
        train_idx, val_idx = split_indices(len(data.texts), [options.val_fraction], seed=options.seed)
        val = subset(data, val_idx)
        data = subset(data, train_idx)
    if len(data.texts) < 8 or not val.texts:
        raise TrainingError(f"{data.source}: only {len(data.texts)} training and {len(val.texts)} validation texts; "
                            "at least 8 and 1 are needed.")
    for j, label in enumerate(data.labels):
        if not any(t[j] >= 0.5 for t in data.targets):
            raise TrainingError(f"{data.source}: no training row is positive for label {label!r}; "
                                "a classifier cannot learn it. Drop the column or add examples.")
    texts, targets = list(data.texts), [list(t) for t in data.targets]
    added = 0
    if options.mitigate_identity:
        # Twice each: a single copy left "I am a white man." at 0.99 toxicity (Davidson's tweets
        # use "white", "queer" mostly as insults); two copies bring the worst group down (bench).
        identity = training_sentences() * 2
        texts += identity
        added = len(identity)
        log(f"identity mitigation: {added} neutral identity statements added as non-toxic examples")
    in_domain = [*support_sentences(options.support_examples, options.seed), *neutral]
    if in_domain:
        texts += in_domain
        log(f"in-domain examples: {len(in_domain) - len(neutral)} generated support sentences + {len(neutral)} given "
            "texts added as non-toxic")
    targets += [[0.0] * len(data.labels) for _ in range(len(texts) - len(targets))]

    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    tokenizer = train_classifier_tokenizer(texts, options.vocab_size, options.max_length)
    model = build_classifier(tokenizer, data.labels, options)
    params = sum(p.numel() for p in model.parameters())
    log(f"classifier: BERT {options.num_layers}x{options.hidden_size}, {params / 1e6:.2f}M parameters, vocabulary "
        f"{len(tokenizer)}; {len(texts)} training / {len(val.texts)} validation texts; labels {', '.join(data.labels)}")

    ids = tokenizer(texts, truncation=True)["input_ids"]
    steps_per_epoch = math.ceil(len(ids) / options.batch_size)
    total = max(1, int(steps_per_epoch * options.epochs))
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.02, 1 - s / total))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=_pos_weight(targets, options.balance))
    rng = random.Random(options.seed)
    deadline = time.time() + options.max_minutes * 60 if options.max_minutes else None
    started = time.time()
    step, stopped, best = 0, "epochs", (math.inf, None, 0)
    history: list[dict[str, float]] = []
    with _Progress(total, options.progress) as bar:
        while step < total and stopped == "epochs":
            model.train()
            for batch in _batches(ids, options.batch_size, rng):
                input_ids, mask = _pad(ids, batch, tokenizer.pad_token_id)  # (B, T)
                y = torch.tensor([targets[i] for i in batch], dtype=torch.float32)  # (B, L)
                loss = loss_fn(model(input_ids=input_ids, attention_mask=mask).logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                step += 1
                bar.update(step, loss.item())
                if deadline is not None and time.time() > deadline:
                    stopped = "time budget"
                    break
                if step >= total:
                    break
            val_loss = _val_loss(model, tokenizer, val, loss_fn)
            history.append({"step": step, "val_loss": val_loss})
            if val_loss < best[0]:
                best = (val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
            elif stopped == "epochs" and step < total and sum(h["step"] > best[2] for h in history) >= 2:
                stopped = "early stop (no better validation loss twice)"
    if best[1] is not None:
        model.load_state_dict(best[1])
    seconds = time.time() - started
    thresholds = calibrate(model, tokenizer, val) if options.calibrate else {}
    scores = predict(model, tokenizer, data.labels, val.texts)
    metrics = evaluate(val, scores)
    metrics.update({"calibrated_thresholds": thresholds, "steps": step, "best_step": best[2], "seconds": round(seconds, 1), "stopped": stopped,
                    "val_loss": round(best[0], 4), "train_texts": len(texts), "val_texts": len(val.texts),
                    "identity_examples": added, "support_examples": len(in_domain), "parameters": params})
    log(f"trained {step} steps in {seconds:.0f}s ({stopped}); best validation loss {best[0]:.4f} at step {best[2]}")
    path = save_classifier(model, tokenizer, data, out_root / name, metrics, options)
    _verify(path, model, tokenizer, data.labels, val.texts[:16])
    return TrainedClassifier(name, path, data.labels, metrics, model, tokenizer)


def calibrate(model: Any, tokenizer: Any, val: LabelledData, grid: tuple[float, float] = (0.5, 0.9)) -> dict[str, float]:
    """Shift each label's output bias so that score 0.5 means the threshold with the best F1 on ``val``.

    sigmoid(z - logit(t)) >= 0.5 exactly when sigmoid(z) >= t, so the served scores need no
    per-model threshold. Labels with fewer than 10 positives in ``val`` are left alone. Only
    upwards (t >= 0.5): it undoes the over-prediction that up-weighting rare positives causes
    (Davidson's hate: t = 0.62), while a lower threshold, best for F1 where toxic is the
    majority (83% of Davidson; t = 0.26), raised false alarms on support replies from 1 to 11
    of 237 (bench/safety_davidson.py).
    """
    import torch

    from appkit.safety.metrics import binary_f1

    raw = predict(model, tokenizer, val.labels, val.texts)
    found: dict[str, float] = {}
    lo, hi = grid
    candidates = [round(lo + i * 0.02, 2) for i in range(int(round((hi - lo) / 0.02)) + 1)]
    for j, label in enumerate(val.labels):
        y = [t[j] >= 0.5 for t in val.targets]
        if sum(y) < 10 or sum(y) == len(y):
            continue
        s = [r[label] for r in raw]
        best = max(candidates, key=lambda t: (binary_f1(y, [v >= t for v in s])["f1"], -abs(t - 0.5)))
        found[label] = best
        with torch.no_grad():
            model.classifier.bias[j] -= math.log(best / (1 - best))
    return found


def _pos_weight(targets: list[list[float]], balance: bool) -> Any:
    import torch

    n = len(targets)
    weights = []
    for j in range(len(targets[0])):
        pos = sum(1 for t in targets if t[j] >= 0.5)
        weights.append(min(10.0, max(1.0, math.sqrt((n - pos) / max(1, pos)))) if balance else 1.0)
    return torch.tensor(weights)


def _batches(ids: list[list[int]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (less padding: ~1.6x faster on tweets), in random order."""
    order = list(range(len(ids)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(ids[i]))
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(ids: list[list[int]], batch: list[int], pad: int) -> tuple[Any, Any]:
    import torch

    width = max(len(ids[i]) for i in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, i in enumerate(batch):
        input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
        mask[r, : len(ids[i])] = 1
    return input_ids, mask


def _val_loss(model: Any, tokenizer: Any, val: LabelledData, loss_fn: Any) -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for b in range(0, len(val.texts), 128):
            enc = tokenizer(val.texts[b:b + 128], return_tensors="pt", truncation=True, padding=True)
            y = torch.tensor(val.targets[b:b + 128], dtype=torch.float32)
            total += float(loss_fn(model(**enc).logits, y)) * len(y)
            n += len(y)
    model.train()
    return total / max(1, n)


def evaluate(data: LabelledData, scores: list[dict[str, float]], threshold: float = 0.5) -> dict[str, Any]:
    """ROC-AUC and F1 per label (and Davidson's weighted F1 when the data has its classes)."""
    from appkit.safety.metrics import binary_f1, davidson_class, roc_auc, weighted_f1

    per_label: dict[str, Any] = {}
    for j, label in enumerate(data.labels):
        y = [t[j] for t in data.targets]
        s = [sc[label] for sc in scores]
        auc = roc_auc(y, s)
        per_label[label] = {"roc_auc": None if auc is None else round(auc, 4), "positives": sum(v >= 0.5 for v in y),
                            **{k: round(v, 4) for k, v in binary_f1(y, [v >= threshold for v in s]).items()}}
    out: dict[str, Any] = {"labels": per_label, "threshold": threshold}
    if data.classes:
        predicted = [davidson_class(sc, threshold) for sc in scores]
        out["weighted_f1"] = round(weighted_f1(data.classes, predicted), 4)
    return out


def _verify(path: Path, model: Any, tokenizer: Any, labels: Sequence[str], texts: list[str]) -> None:
    """Reload through detoxify and compare: a key mismatch would silently give random weights."""
    from appkit.safety.detox import load_trained

    texts = texts or ["hello"]
    loaded = load_trained(path)
    a = predict(model, tokenizer, labels, texts)
    b = loaded.score(texts)
    worst = max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in labels)
    if worst > 1e-4:
        raise SafetyError(f"{path}: reloading through detoxify changes the scores (max difference {worst:.4f}); "
                          "the checkpoint is not usable. Report this with your detoxify/transformers versions.")


def save_classifier(model: Any, tokenizer: Any, data: LabelledData, out_dir: Path, metrics: dict[str, Any],
                    options: ClassifierOptions) -> Path:
    """Write detoxify.ckpt + hf/ + safety.json to ``out_dir`` atomically (replacing it)."""
    import torch

    from appkit.files import write_json_atomic
    from appkit.model.io import quiet_transformers, staged_directory

    quiet_transformers()
    out_dir = Path(out_dir)
    with staged_directory(out_dir) as staging:
        model.config.save_pretrained(staging / HF_DIR)
        tokenizer.save_pretrained(staging / HF_DIR)
        checkpoint = {
            "config": {
                "arch": {"args": {
                    # detoxify passes model_type to from_pretrained: the final hf/ path, which exists offline.
                    "model_type": str((out_dir / HF_DIR).resolve()),
                    "model_name": type(model).__name__,  # a concrete class: getattr(transformers, name)
                    "tokenizer_name": "PreTrainedTokenizerFast",
                    "num_classes": len(data.labels),
                }},
                "dataset": {"args": {"classes": list(data.labels)}},
            },
            # Plain keys ("bert.encoder..."), no Lightning "model." prefix.
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        }
        torch.save(checkpoint, staging / CHECKPOINT_FILE)
        write_json_atomic(staging / METADATA_FILE, {
            "appkit_format": 1, "name": out_dir.name, "labels": list(data.labels), "scheme": data.scheme,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data": {"source": data.source,
                                                                         "texts": len(data.texts)},
            "metrics": metrics, "options": asdict(options),
        })
    return out_dir


def read_classifier_metadata(path: str | Path) -> dict[str, Any]:
    """The safety.json of a trained checkpoint ({} if absent or unreadable)."""
    try:
        return json.loads((Path(path) / METADATA_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


class _Progress:
    """A rich progress bar with loss and ETA; silent when disabled."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self._bar: Any = None
        self._task: Any = None
        self._loss: float | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn())
            self._bar.__enter__()
            self._task = self._bar.add_task("train", total=self.total, loss="-")
        return self

    def update(self, step: int, loss: float) -> None:
        self._loss = loss if self._loss is None else 0.95 * self._loss + 0.05 * loss  # smoothed for reading
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=f"{self._loss:.3f}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
