"""The running batch: the rows the engine decodes together over one KV cache.

Continuous batching: a request joins between two decode steps (its prompt is prefilled on its
own, then its cache rows are merged in) and leaves as soon as it finishes, so a request that
arrives while others are half-way through their replies waits one step, not until they end.
Rows are left-padded to a common cache length; each keeps its own position ids, so padding
never shifts a row's positions. Padding columns that no row needs any more are cut off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from appkit.engine.engine import _Request
    from appkit.engine.text import TextStream


@dataclass
class Row:
    """One request in the batch: its sampler, its text so far and the token it feeds next."""

    request: _Request
    text: TextStream
    generator: Any  # torch.Generator | None (None: greedy)
    seen: torch.Tensor  # (N,) the reply's ids so far, for the repetition penalty
    token: int = -1  # the last sampled token: the next step's input


@dataclass
class RunningBatch:
    """Rows decoding together: ``cache`` holds (n, heads, L, dim) per layer, ``mask`` is (n, L)."""

    model: Any
    cache_kwarg: str
    rows: list[Row] = field(default_factory=list)
    cache: Any = None  # transformers DynamicCache
    mask: torch.Tensor | None = None  # (n, L): 1 where the cache holds a real token of the row
    positions: torch.Tensor | None = None  # (n,): the position id of each row's next input

    @classmethod
    def prefill(cls, model: Any, cache_kwarg: str, rows: list[Row], pad_id: int, device: Any) -> tuple[RunningBatch, torch.Tensor]:
        """Run the prompts of ``rows`` (left-padded) through the model; returns the batch and (k, V) logits."""
        import torch
        from transformers import DynamicCache

        width = max(len(r.request.prompt) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            prompt = r.request.prompt
            ids[i, width - len(prompt) :] = torch.tensor(prompt)  # left padding
            mask[i, width - len(prompt) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (k, width)
        cache = DynamicCache()
        logits = _forward(model, cache_kwarg, ids, mask, positions, cache)
        return cls(model, cache_kwarg, list(rows), cache, mask, positions[:, -1] + 1), logits

    def step(self) -> torch.Tensor:
        """Feed every row its last token; returns (n, V) logits of the next one."""
        import torch

        assert self.mask is not None and self.positions is not None
        n = len(self.rows)
        device = self.mask.device
        ids = torch.tensor([r.token for r in self.rows], device=device)[:, None]  # (n, 1)
        self.mask = torch.cat([self.mask, torch.ones((n, 1), dtype=self.mask.dtype, device=device)], dim=1)
        logits = _forward(self.model, self.cache_kwarg, ids, self.mask, self.positions[:, None], self.cache)
        self.positions = self.positions + 1
        return logits

    def keep(self, kept: list[int]) -> None:
        """Keep only the rows at indices ``kept`` (in order) and cut padding no row needs."""
        import torch

        if len(kept) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in kept]
        if not kept:
            self.cache = self.mask = self.positions = None
            return
        assert self.mask is not None and self.positions is not None
        index = torch.tensor(kept, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.positions = self.mask[index], self.positions[index]
        used = self.mask.any(dim=0).nonzero()
        lead = int(used[0]) if used.numel() else 0
        if lead:  # columns that were only padding for the rows that remain
            self.mask = self.mask[:, lead:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, lead:], layer.values[:, :, lead:]

    def extend(self, other: RunningBatch) -> None:
        """Append the rows of ``other`` (just prefilled), left-padding the shorter cache to the longer."""
        import torch
        import torch.nn.functional as F

        if not other.rows:
            return
        if not self.rows:
            self.rows, self.cache, self.mask, self.positions = other.rows, other.cache, other.mask, other.positions
            return
        assert self.mask is not None and other.mask is not None
        assert self.positions is not None and other.positions is not None
        length = max(self.mask.shape[1], other.mask.shape[1])
        pad_self, pad_other = length - self.mask.shape[1], length - other.mask.shape[1]
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            # (n, heads, L, dim): pad dim 2 on the left; the padded slots are masked out.
            mine.keys = torch.cat([F.pad(mine.keys, (0, 0, pad_self, 0)), F.pad(theirs.keys, (0, 0, pad_other, 0))])
            mine.values = torch.cat([F.pad(mine.values, (0, 0, pad_self, 0)),
                                     F.pad(theirs.values, (0, 0, pad_other, 0))])
        self.mask = torch.cat([F.pad(self.mask, (pad_self, 0)), F.pad(other.mask, (pad_other, 0))])
        self.positions = torch.cat([self.positions, other.positions])
        self.rows = self.rows + other.rows


def _forward(model: Any, cache_kwarg: str, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
             cache: Any) -> torch.Tensor:
    # A full (n, T) mask only when some row has padding; a single unpadded prompt needs none.
    attn = mask if bool((mask == 0).any()) else None
    out = model(input_ids=ids, attention_mask=attn, position_ids=positions, use_cache=True, logits_to_keep=1,
                **{cache_kwarg: cache})
    return out.logits[:, -1, :]  # (n, V)
