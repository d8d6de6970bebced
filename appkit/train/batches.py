"""Labelled texts as training batches: token ids padded per batch, texts of similar length together.

The language model trains on packed rows (packing.py); a classifier reads one text per row,
so its batches are padded instead. Sorting by length (plus noise, so batches differ from epoch
to epoch) keeps that padding small (bench/README.md).
Both kinds serve the training loop (loop.py) through the same two methods,
``batches_per_epoch`` and ``epoch``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (B, T), right-padded to the longest row."""
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return input_ids, mask


@dataclass(frozen=True)
class TextBatch:
    """One batch of texts: ids and mask (B, T), targets (B,) labels or (B, L) per-label values."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    targets: torch.Tensor
    n_tokens: int  # real tokens, for tokens/s

    def to(self, device: Any) -> TextBatch:
        return TextBatch(self.input_ids.to(device), self.attention_mask.to(device), self.targets.to(device),
                         self.n_tokens)


class TextBatches:
    """Token-id lists with a target each, served in batches of similar length in a seeded order."""

    def __init__(self, ids: Sequence[Sequence[int]], targets: Sequence[Any], pad_id: int, *,
                 ids_per_token: int = 1) -> None:
        """``targets``: an int label per text, or a list of floats (multi-label);
        ``ids_per_token``: a model reading several ids per word (the BiLSTM) counts words as tokens."""
        if len(ids) != len(targets):
            raise ValueError(f"{len(ids)} texts but {len(targets)} targets")
        self.ids = [list(r) for r in ids]
        self.targets = list(targets)
        self.pad_id = pad_id
        self.ids_per_token = ids_per_token

    def __len__(self) -> int:
        return len(self.ids)

    def batches_per_epoch(self, batch_size: int, world: int = 1) -> int:
        """Optimizer steps in one epoch when each of ``world`` processes takes ``batch_size`` texts."""
        global_batch = batch_size * world
        full, rest = divmod(len(self.ids), global_batch)
        return full + (1 if rest >= world else 0)

    def epoch(self, epoch: int, batch_size: int, *, seed: int, shuffle: bool = True, rank: int = 0,
              world: int = 1) -> Iterator[TextBatch]:
        """This process's batches of one epoch; the order depends only on (seed, epoch).

        Shuffled: sorted by length plus noise, cut into batches, the batches shuffled.
        Not shuffled: longest first, so memory peaks at once.
        """
        if shuffle:
            rng = random.Random(seed * 1_000_003 + epoch)
            order = sorted(range(len(self.ids)), key=lambda i: len(self.ids[i]) + 4 * rng.random())
        else:
            order = sorted(range(len(self.ids)), key=lambda i: -len(self.ids[i]))
        global_batch = batch_size * world
        chunks = [order[b:b + global_batch] for b in range(0, len(order), global_batch)]
        if shuffle:
            rng.shuffle(chunks)
        for chunk in chunks:
            if len(chunk) < world:
                continue
            yield self.collate(chunk[rank::world])

    def collate(self, indices: Sequence[int]) -> TextBatch:
        """The batch of the texts at ``indices``."""
        import torch

        input_ids, mask = pad([self.ids[i] for i in indices], self.pad_id)
        targets = torch.tensor([self.targets[i] for i in indices])
        return TextBatch(input_ids, mask, targets, int(mask.sum()) // self.ids_per_token)
