"""The classifier: a small bidirectional encoder from scratch, or a head on an appkit causal LM.

From scratch: a WordPiece tokenizer trained on the training texts (lower-cased, punctuation
split: on SST-2 whole words dominate, and rare words still split into known pieces) and a
ModernBERT encoder (RoPE, GeGLU, pre-norm) with mean pooling, loaded by plain
``AutoModelForSequenceClassification``. On a base (``--base``): the base's own tokenizer and
``LlamaForSequenceClassification`` (the base's weights, a new ``score`` head reading the last
token; an end-of-text token is appended so that token is always the same kind).

Either way the saved directory is a standard Hugging Face one (config.json with
id2label/label2id, model.safetensors, tokenizer) plus appkit.json: labels, temperature,
polarity, the special ids wrapped around every text, metrics and the data fingerprint.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import ModelError
from appkit.train.batches import pad

if TYPE_CHECKING:
    import torch

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HEAD_SHARE = 4  # a truncated text keeps its first quarter and its end: reviews conclude at the end


@dataclass(frozen=True)
class Wrapping:
    """The ids put around every text and the context length they must fit in."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    max_length: int
    pad_id: int

    def as_dict(self) -> dict[str, Any]:
        return {"prefix": list(self.prefix), "suffix": list(self.suffix), "max_length": self.max_length,
                "pad_id": self.pad_id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Wrapping:
        return cls(tuple(d["prefix"]), tuple(d["suffix"]), int(d["max_length"]), int(d["pad_id"]))


@functools.cache  # decided once per process: the CPU is sampled the first time only
def set_cpu_wait_policy() -> None:
    """Let torch's idle OpenMP threads sleep when other work is using the CPU (only before torch is imported).

    On a machine to itself, threads that spin between operations train about twice as fast as
    threads that sleep (OMP_WAIT_POLICY=PASSIVE); beside a CPU-bound process, spinning threads
    fight it and train at less than half the sleeping ones' speed (bench/README.md). So the CPU
    is sampled for 0.2 s first and PASSIVE set only if other work holds at least half a core. A
    value the user set is kept.
    """
    import os
    import sys

    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return
    import psutil

    busy_cores = psutil.cpu_percent(interval=0.2) / 100 * (psutil.cpu_count() or 1)
    if busy_cores >= 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def train_wordpiece(texts: Sequence[str], vocab_size: int, max_length: int) -> Any:
    """A lower-casing WordPiece tokenizer trained on ``texts``, with [CLS] ... [SEP] around each text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                        show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = core.token_to_id("[CLS]"), core.token_to_id("[SEP]")
    core.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length,
                                   padding_side="right", model_input_names=["input_ids", "attention_mask"])


def build_encoder(tokenizer: Any, labels: Sequence[str], *, hidden_size: int, layers: int, heads: int,
                  max_length: int, dropout: float, seed: int) -> Any:
    """A fresh ModernBERT classifier with mean pooling over the text's tokens."""
    import torch
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
        # GeGLU halves the intermediate projection: 1.5x hidden is 3x hidden of input to the gate.
        intermediate_size=hidden_size * 3 // 2, max_position_embeddings=max_length,
        layer_types=["full_attention"] * layers,  # texts are short: no sliding-window layers
        pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
        bos_token_id=None, eos_token_id=None,
        classifier_pooling="mean", embedding_dropout=dropout, mlp_dropout=dropout, attention_dropout=dropout,
        classifier_dropout=dropout, num_labels=len(labels), **label_maps(labels),
    )
    torch.manual_seed(seed)
    return ModernBertForSequenceClassification(config)


def from_base(base_dir: Path, labels: Sequence[str], seed: int) -> tuple[Any, Any]:
    """(classifier, tokenizer) from a saved causal LM: its weights, a new classification head."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from appkit.model.io import quiet_transformers

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
        torch.manual_seed(seed)  # the new head's initialisation
        model = AutoModelForSequenceClassification.from_pretrained(
            base_dir, local_files_only=True, num_labels=len(labels), **label_maps(labels), dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"--base {base_dir}: cannot be loaded with a classification head ({e}).") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.pad_token_id is None:
        raise ModelError(f"--base {base_dir}: its tokenizer has neither a pad nor an end-of-text token.")
    model.config.pad_token_id = tokenizer.pad_token_id  # the head finds each row's last real token by it
    return model, tokenizer


def label_maps(labels: Sequence[str]) -> dict[str, Any]:
    """id2label / label2id for a transformers config."""
    return {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}


def wrapping_for(tokenizer: Any, model: Any, max_length: int | None = None) -> Wrapping:
    """[CLS] ... [SEP] for an encoder; for a causal LM base, its end-of-text token after the text."""
    limit = int(getattr(model.config, "max_position_embeddings", 0) or 512)
    max_length = min(limit, max_length or limit)
    if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
        return Wrapping((tokenizer.cls_token_id,), (tokenizer.sep_token_id,), max_length, tokenizer.pad_token_id)
    suffix = (tokenizer.eos_token_id,) if tokenizer.eos_token_id is not None else ()
    return Wrapping((), suffix, max_length, tokenizer.pad_token_id)


def encode(tokenizer: Any, texts: Sequence[str], wrapping: Wrapping) -> tuple[list[list[int]], list[int]]:
    """Token ids per text, wrapped and cut to the context; and each text's length before cutting.

    A text too long keeps its first quarter and its end (Sun et al. 2019: head + tail beats
    either alone on long reviews).
    """
    # verbose=False: cutting is done here (head + tail) and said in appkit's words; transformers would
    # also warn that a long text "will result in indexing errors", which is not true of this path.
    raw = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    room = wrapping.max_length - len(wrapping.prefix) - len(wrapping.suffix)
    head = room // HEAD_SHARE
    out, lengths = [], []
    for ids in raw:
        lengths.append(len(ids) + len(wrapping.prefix) + len(wrapping.suffix))
        if len(ids) > room:
            ids = ids[:head] + ids[len(ids) - (room - head):]
        out.append([*wrapping.prefix, *ids, *wrapping.suffix])
    return out, lengths


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first: memory peaks early)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[b:b + batch_size] for b in range(0, len(order), batch_size)]


def predict_logits(model: Any, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 128,
                   device: str = "cpu") -> torch.Tensor:
    """Logits (N, C) on the CPU in input order; batches of similar length run on ``device``."""
    import torch

    model.eval()
    out = torch.empty((len(ids), model.config.num_labels))
    with torch.inference_mode():
        for batch in length_batches([len(r) for r in ids], batch_size):
            input_ids, mask = pad([ids[i] for i in batch], pad_id)  # (B, T)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            out[batch] = logits.float().cpu()
    return out


def load_classifier(path: Path, device: str = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, appkit metadata) of a saved sentiment classifier."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from appkit.model.io import quiet_transformers, read_metadata

    quiet_transformers()
    metadata = read_metadata(path)
    if metadata.get("app") != "sentiment" or "wrapping" not in metadata:
        raise ModelError(f"{path}: not a sentiment classifier trained by appkit (appkit.json has no sentiment "
                         "metadata). Train one with `appkit sentiment train --data labeled.csv`.")
    from safetensors import SafetensorError

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, SafetensorError) as e:  # missing, cut short or damaged files
        raise ModelError(f"{path}: the sentiment classifier cannot be loaded ({e}).") from None
    return model.to(device).eval(), tokenizer, metadata
