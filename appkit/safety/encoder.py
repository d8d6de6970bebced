"""The optional transformer member of the toxicity classifier: a small BERT, in detoxify's format.

    normalised texts -> byte-level BPE tokenizer -> BERT from scratch -> multi-label sigmoid
    training (like detoxify) -> detoxify.ckpt + hf/ in the classifier's directory

Off by default (``appkit safety train --encoder`` turns it on): trained on Davidson's tweets it
scored higher in-domain than out of it, where the linear member with the lexicon beat it, and
it is the slow part of scoring (bench/safety_transfer.py). When it is trained, the blend keeps
it only if it lowers the validation log-loss (blend.py).

The training loop below is written out here until appkit/train's shared loop trains every model;
the member's scoring (``EncoderMember``) does not depend on it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.safety.detox import CHECKPOINT_FILE, HF_DIR
from appkit.safety.normalise import normalise

if TYPE_CHECKING:
    from appkit.safety.data import LabelledData
    from appkit.safety.train import ClassifierOptions


class EncoderMember:
    """A saved encoder, served through detoxify, as blend member: logits of normalised texts."""

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier  # a DetoxifyClassifier
        self.labels: tuple[str, ...] = classifier.labels

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> EncoderMember:
        from appkit.safety.detox import load_trained

        return cls(load_trained(directory, device=device))

    def logits(self, texts: Sequence[str]) -> Any:
        """Logits per label, numpy float64 (N, L) (long texts in windows: max per label, detox.py)."""
        import numpy as np

        scores = self.classifier.score([normalise(t) for t in texts])
        p = np.array([[s[label] for label in self.labels] for s in scores], dtype=np.float64).reshape(len(texts), -1)
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))


# --- tokenizer and model ------------------------------------------------------------------------


def train_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int) -> Any:
    """Byte-level BPE with [CLS] ... [SEP] over normalised texts (the tokenizer adds NFKC and lower case only)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
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


def build_model(tokenizer: Any, labels: Sequence[str], options: ClassifierOptions) -> Any:
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


# --- training ---------------------------------------------------------------------------------------


@dataclass
class TrainedEncoder:
    """The trained model and tokenizer (in memory) and how training went."""

    model: Any
    tokenizer: Any
    metrics: dict[str, Any]


def train_encoder(texts: Sequence[str], targets: Sequence[Sequence[float]], val: LabelledData,
                  options: ClassifierOptions, pos_weight: Sequence[float],
                  log: Callable[[str], None] = print) -> TrainedEncoder:
    """Train on raw ``texts`` (normalised here), early stopping on ``val``'s loss; the best weights are kept."""
    import torch

    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    normal = [normalise(t) for t in texts]
    val_normal = [normalise(t) for t in val.texts]
    tokenizer = train_tokenizer(normal, options.vocab_size, options.max_length)
    model = build_model(tokenizer, val.labels, options)
    params = sum(p.numel() for p in model.parameters())
    log(f"encoder: BERT {options.num_layers}x{options.hidden_size}, {params / 1e6:.2f}M parameters, vocabulary "
        f"{len(tokenizer)}")
    ids = tokenizer(normal, truncation=True)["input_ids"]
    steps_per_epoch = math.ceil(len(ids) / options.batch_size)
    total = max(1, int(steps_per_epoch * options.epochs))
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.02, 1 - s / total))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(list(pos_weight), dtype=torch.float32))
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
                y = torch.tensor([list(targets[i]) for i in batch], dtype=torch.float32)  # (B, L)
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
            val_loss = _val_loss(model, tokenizer, val_normal, val.targets, loss_fn)
            history.append({"step": step, "val_loss": val_loss})
            if val_loss < best[0]:
                best = (val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
            elif stopped == "epochs" and step < total and sum(h["step"] > best[2] for h in history) >= 2:
                stopped = "early stop (no better validation loss twice)"
    if best[1] is not None:
        model.load_state_dict(best[1])
    seconds = time.time() - started
    log(f"encoder: {step} steps in {seconds:.0f}s ({stopped}); best validation loss {best[0]:.4f} at step {best[2]}")
    return TrainedEncoder(model, tokenizer, {"steps": step, "best_step": best[2], "seconds": round(seconds, 1),
                                             "stopped": stopped, "val_loss": round(best[0], 4), "parameters": params})


def save_encoder(encoder: TrainedEncoder, labels: Sequence[str], staging: Path, final: Path) -> None:
    """Write detoxify.ckpt and hf/ into ``staging`` (a directory that becomes ``final``)."""
    import torch

    from appkit.model.io import quiet_transformers

    quiet_transformers()
    model, tokenizer = encoder.model, encoder.tokenizer
    model.config.save_pretrained(staging / HF_DIR)
    tokenizer.save_pretrained(staging / HF_DIR)
    checkpoint = {
        "config": {
            "arch": {"args": {
                # detoxify passes model_type to from_pretrained: the final hf/ path, which exists offline.
                "model_type": str((final / HF_DIR).resolve()),
                "model_name": type(model).__name__,  # a concrete class: getattr(transformers, name)
                "tokenizer_name": "PreTrainedTokenizerFast",
                "num_classes": len(labels),
            }},
            "dataset": {"args": {"classes": list(labels)}},
        },
        # Plain keys ("bert.encoder..."), no Lightning "model." prefix.
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, staging / CHECKPOINT_FILE)


def predict(model: Any, tokenizer: Any, labels: Sequence[str], texts: Sequence[str], batch_size: int = 64) -> list[dict[str, float]]:
    """Sigmoid scores per label of already normalised ``texts``, exactly as detoxify computes them."""
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


def _val_loss(model: Any, tokenizer: Any, texts: list[str], targets: list[list[float]], loss_fn: Any) -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for b in range(0, len(texts), 128):
            enc = tokenizer(texts[b:b + 128], return_tensors="pt", truncation=True, padding=True)
            y = torch.tensor(targets[b:b + 128], dtype=torch.float32)
            total += float(loss_fn(model(**enc).logits, y)) * len(y)
            n += len(y)
    model.train()
    return total / max(1, n)


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
