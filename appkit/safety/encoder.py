"""The optional transformer member of the toxicity classifier: a small BERT, in detoxify's format.

    normalised texts -> byte-level BPE tokenizer -> BERT from scratch -> multi-label sigmoid
    training (like detoxify) -> detoxify.ckpt + hf/ in the classifier's directory

Off by default (``appkit safety train --encoder`` turns it on): trained on Davidson's tweets it
scored higher in-domain than out of it, where the linear member with the lexicon beat it, and
it is the slow part of scoring (bench/safety_transfer.py). When it is trained, the blend keeps
it only if it lowers the validation log-loss (blend.py).

It trains in appkit's one training loop (appkit/train/loop.py), as every model does.
"""

from __future__ import annotations

import math
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
    """Train on raw ``texts`` (normalised here) in appkit's training loop, validating on ``val``'s
    loss; the best weights are kept."""
    import tempfile

    import torch

    from appkit.train.batches import TextBatches
    from appkit.train.loop import TrainConfig, Trainer, Validation

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
    weight = torch.tensor(list(pos_weight), dtype=torch.float32)

    def loss(model: Any, batch: Any, device: Any) -> tuple[Any, float]:
        logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)).logits
        y = batch.targets.to(device, torch.float32)  # (B, L): a loss term per text and label
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y, pos_weight=weight.to(device), reduction="sum"), y.numel()

    def validate(model: Any) -> Validation:
        return Validation(_val_loss(model, tokenizer, val_normal, val.targets, weight))

    # As detoxify trains: AdamW's usual betas, a short warmup, then decay nearly to zero.
    cfg = TrainConfig(batch_size=options.batch_size, learning_rate=options.learning_rate, min_lr_ratio=0.02,
                      warmup_share=0.05, warmup_steps=None, weight_decay=options.weight_decay, betas=(0.9, 0.999),
                      epochs=options.epochs, max_steps=options.max_steps, max_minutes=options.max_minutes or None,
                      patience=2, resumable=False, seed=options.seed, progress=options.progress, title="encoder")
    batches = TextBatches(tokenizer(normal, truncation=True)["input_ids"], [list(t) for t in targets],
                          tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory(prefix="appkit-encoder-") as run_dir:
        result = Trainer(model, batches, None, cfg, Path(run_dir), loss=loss, validate=validate).run()
    model.eval()
    best = result.best_val_loss if result.best_val_loss is not None else math.nan
    log(f"encoder: {result.steps} steps in {result.seconds:.0f}s ({result.stopped}); best validation loss "
        f"{best:.4f} at step {result.best_step}")
    return TrainedEncoder(model, tokenizer, {"steps": result.steps, "best_step": result.best_step,
                                             "seconds": round(result.seconds, 1), "stopped": result.stopped,
                                             "val_loss": round(best, 4), "parameters": params})


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


def _val_loss(model: Any, tokenizer: Any, texts: list[str], targets: list[list[float]], pos_weight: Any) -> float:
    """Mean loss per text and label on the validation texts, as training counts it."""
    import torch

    total, n = 0.0, 0
    with torch.no_grad():
        for b in range(0, len(texts), 128):
            enc = tokenizer(texts[b:b + 128], return_tensors="pt", truncation=True, padding=True)
            y = torch.tensor(targets[b:b + 128], dtype=torch.float32)
            total += float(torch.nn.functional.binary_cross_entropy_with_logits(
                model(**enc).logits, y, pos_weight=pos_weight, reduction="sum"))
            n += y.numel()
    return total / max(1, n)
