"""Turn conversations (assistant-only labels) and documents (every token) into packed training rows.

Whole conversations are packed into fixed-length rows (first-fit decreasing), so almost no
compute goes to padding (bench/train.py reports the share).
Position ids restart at 0 for every conversation; with no attention mask and no KV cache,
transformers reads that as packed sequences and keeps attention inside each conversation.
``Batch.inputs`` is the one place that builds the model's arguments, so every caller gets this
right (see there).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appkit.tokenizer import encode_conversation

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from appkit.data.types import Conversation, Document

IGNORE = -100  # label value the loss skips


@dataclass(frozen=True)
class Example:
    """One tokenized conversation: ids and per-token labels (IGNORE where not learned)."""

    ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.ids)


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Conversation], max_length: int
) -> list[Example]:
    """Tokenize conversations; a conversation longer than ``max_length`` keeps its first tokens.

    Conversations that would learn nothing (no assistant token left after truncation) are dropped.
    """
    out: list[Example] = []
    for conv in conversations:
        ids, mask = encode_conversation(tokenizer, conv.as_messages())
        ids, mask = ids[:max_length], mask[:max_length]
        if any(mask):
            out.append(Example(ids, [t if m else IGNORE for t, m in zip(ids, mask)]))
    return out


def encode_documents(
    tokenizer: PreTrainedTokenizerBase, documents: Sequence[Document], max_length: int
) -> list[Example]:
    """Tokenize raw documents for language modelling: every token is learned.

    Each document ends with the end-of-text token (the model learns where articles end) and is
    cut into ``max_length`` chunks; a chunk restarts positions at 0, as a packed row does.
    """
    if not documents:  # e.g. the validation side of a one-document corpus (the tokenizer fails on [])
        return []
    end = tokenizer.eos_token_id
    encoded = tokenizer([d.text for d in documents], add_special_tokens=False)["input_ids"]
    out: list[Example] = []
    for ids in encoded:
        ids = [*ids, end]
        for start in range(0, len(ids), max_length):
            chunk = ids[start:start + max_length]
            if len(chunk) >= 2:  # a lone token predicts nothing
                out.append(Example(chunk, list(chunk)))
    return out


def pack(examples: Sequence[Example], row_length: int) -> list[list[int]]:
    """Group example indices into rows of at most ``row_length`` tokens (first-fit decreasing)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]), reverse=True)
    rows: list[list[int]] = []
    # Free space of each open row, kept sorted so the best-fitting row is a bisect away.
    free: list[tuple[int, int]] = []  # (space left, row index)
    for i in order:
        size = len(examples[i])
        pos = bisect.bisect_left(free, (size, -1))
        if pos == len(free):
            rows.append([i])
            bisect.insort(free, (row_length - size, len(rows) - 1))
        else:
            space, row = free.pop(pos)
            rows[row].append(i)
            bisect.insort(free, (space - size, row))
    return rows


@dataclass(frozen=True)
class Batch:
    """Tensors for one optimizer micro-step."""

    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    n_tokens: int  # real (non-padding) tokens
    n_target_tokens: int  # tokens the loss is computed on

    def inputs(self, device: torch.device | str) -> dict[str, Any]:
        """The model's keyword arguments for this batch on ``device``.

        ``use_cache=False`` is what keeps packed conversations apart: transformers only derives
        the per-conversation mask from restarting position ids when no cache exists, and a Llama
        config's default ``use_cache=True`` makes one even in training. With it, every
        conversation attended to the ones packed before it in its row.
        """
        return {
            "input_ids": self.input_ids.to(device, non_blocking=True),
            "labels": self.labels.to(device, non_blocking=True),
            "position_ids": self.position_ids.to(device, non_blocking=True),
            "use_cache": False,
        }


def collate(examples: Sequence[Example], rows: Sequence[Sequence[int]], row_length: int, pad_id: int,
            n_rows: int | None = None) -> Batch:
    """Build a batch from packed rows, padding each row's tail, and with empty rows up to ``n_rows``."""
    import torch

    B = max(len(rows), n_rows or 0)
    input_ids = torch.full((B, row_length), pad_id, dtype=torch.long)
    labels = torch.full((B, row_length), IGNORE, dtype=torch.long)
    # Padding gets its own position run, so it forms a separate "sequence" nothing attends to.
    position_ids = torch.arange(row_length).repeat(B, 1)
    n_tokens = 0
    for b, row in enumerate(rows):
        t = 0
        for i in row:
            ex = examples[i]
            n = len(ex)
            input_ids[b, t : t + n] = torch.tensor(ex.ids)
            labels[b, t : t + n] = torch.tensor(ex.labels)
            position_ids[b, t : t + n] = torch.arange(n)
            t += n
        position_ids[b, t:] = torch.arange(row_length - t)
        n_tokens += t
    n_target = int((labels != IGNORE).sum())
    return Batch(input_ids, labels, position_ids, n_tokens, n_target)


class PackedDataset:
    """Packed rows of a set of examples, served as batches in a seeded order per epoch."""

    def __init__(self, examples: Sequence[Example], row_length: int, pad_id: int) -> None:
        self.examples = list(examples)
        self.row_length = row_length
        self.pad_id = pad_id
        self.rows = pack(self.examples, row_length)
        self.n_tokens = sum(len(e) for e in self.examples)

    @property
    def padding_fraction(self) -> float:
        """Share of row tokens that are padding."""
        total = len(self.rows) * self.row_length
        return 1 - self.n_tokens / total if total else 0.0

    def batches_per_epoch(self, batch_size: int, world: int = 1) -> int:
        """Optimizer steps in one epoch when each of ``world`` processes takes ``batch_size`` rows."""
        global_batch = batch_size * world
        full, rest = divmod(len(self.rows), global_batch)
        # The last incomplete batch is kept (small histories must not lose conversations) as
        # long as every process gets at least one row of it.
        return full + (1 if rest >= world else 0)

    def epoch(
        self, epoch: int, batch_size: int, *, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1
    ) -> Iterator[Batch]:
        """This process's batches of one epoch.

        The order depends only on (seed, epoch), so a resumed run replays it exactly, and every
        process of a distributed run agrees on it: process ``rank`` takes every ``world``-th row.
        Every batch has ``batch_size`` rows: the epoch's last, short one is filled with empty rows
        (nothing to learn, a fraction of one step's work per epoch), so a compiled model sees one
        shape and never recompiles (18 s for the tiny preset on 2 cores).
        """
        order = list(range(len(self.rows)))
        if shuffle:
            random.Random(seed * 1_000_003 + epoch).shuffle(order)
        global_batch = batch_size * world
        for start in range(0, len(order), global_batch):
            chunk = order[start : start + global_batch]
            if len(chunk) < world:
                break
            rows = [self.rows[r] for r in chunk[rank::world]]
            yield collate(self.examples, rows, self.row_length, self.pad_id, n_rows=batch_size)
