"""How likely a model finds each of several continuations of one prompt, in one batched pass.

Choosing among candidate replies (the support app's grounded mode) needs log P(reply | prompt)
for every candidate. Scoring them one by one would run the shared prompt through the model
once per candidate; here the prompt is run once, its KV cache is repeated across the batch, and
all candidates are scored together, right-padded: a causal model's real tokens never see the
padding after them, so no attention mask is needed and the sums equal one-by-one scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContinuationScore:
    """The log-probability of one continuation, summed over its tokens."""

    logprob: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / max(self.tokens, 1)


def score_continuations(model: Any, prompt: Sequence[int], continuations: Sequence[Sequence[int]], *,
                        cache_kwarg: str = "cache", max_batch: int = 16) -> list[ContinuationScore]:
    """log P(continuation | prompt) for each continuation (token ids), prompt computed once.

    Args:
        model: a causal LM (transformers), in eval mode.
        prompt: the shared prefix's token ids (at least one token).
        continuations: token ids of each candidate; empty ones score 0 over 0 tokens.
        cache_kwarg: the name the model's forward takes its KV cache by (engine.cache_kwarg).
        max_batch: candidates per forward pass (bounds memory for long candidate lists).
    """
    import copy

    import torch
    from transformers import DynamicCache

    if not prompt:
        raise ValueError("score_continuations needs a prompt of at least one token")
    device = next(model.parameters()).device
    results: list[ContinuationScore] = [ContinuationScore(0.0, 0)] * len(continuations)
    todo = [i for i, c in enumerate(continuations) if len(c)]
    if not todo:
        return results
    with torch.inference_mode():
        prefix = DynamicCache()
        out = model(input_ids=torch.tensor([list(prompt)], device=device), use_cache=True,
                    logits_to_keep=1, **{cache_kwarg: prefix})
        first_logp = torch.log_softmax(out.logits[0, -1].float(), -1)  # (V,) for every first token
        n_prompt = len(prompt)
        for start in range(0, len(todo), max_batch):
            chunk = todo[start:start + max_batch]
            B, T = len(chunk), max(len(continuations[i]) for i in chunk)
            ids = torch.zeros((B, T), dtype=torch.long, device=device)
            for b, i in enumerate(chunk):
                ids[b, : len(continuations[i])] = torch.tensor(list(continuations[i]), device=device)
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(B)
            positions = torch.arange(n_prompt, n_prompt + T, device=device).expand(B, T)
            logits = model(input_ids=ids, position_ids=positions, use_cache=True,
                           **{cache_kwarg: cache}).logits.float()  # (B, T, V)
            # Token t is predicted by position t-1; the first by the prompt's last position.
            logp = torch.log_softmax(logits[:, :-1], -1).gather(2, ids[:, 1:, None])[..., 0]  # (B, T-1)
            for b, i in enumerate(chunk):
                n = len(continuations[i])
                total = float(first_logp[ids[b, 0]]) + float(logp[b, : n - 1].sum())
                results[i] = ContinuationScore(total, n)
    return results
