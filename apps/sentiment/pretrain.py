"""Masked-language-model warm-up of the encoder on the training texts themselves.

Before the classifier sees a label, its encoder learns what the words of this data set mean
from their contexts (BERT's objective, on the training texts only: no outside data). Krishna
et al. 2022 ("Downstream datasets make surprisingly good pretraining corpora") found such
self-pretraining recovers much of what a large pretraining corpus gives. Only whole texts are
used (a phrase inside a longer text adds nothing the longer one does not have).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

MASK_SHARE = 0.15


def mask_tokens(input_ids: Any, attention: Any, mask_id: int, vocab_size: int, first_regular: int,
                gen: Any) -> tuple[Any, Any]:
    """BERT's masking: 15% of real tokens are targets; of those 80% [MASK], 10% random, 10% kept."""
    import torch

    inner = attention.clone()
    inner[:, 0] = 0  # [CLS]
    inner[torch.arange(len(inner)), attention.sum(1) - 1] = 0  # [SEP]
    chosen = (torch.rand(input_ids.shape, generator=gen) < MASK_SHARE) & inner.bool()
    labels = input_ids.masked_fill(~chosen, -100)
    roll = torch.rand(input_ids.shape, generator=gen)
    out = input_ids.masked_fill(chosen & (roll < 0.8), mask_id)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(first_regular, vocab_size, input_ids.shape, generator=gen)
    return torch.where(swap, random_ids, out), labels


def warm_up_encoder(classifier: Any, ids: Sequence[Sequence[int]], *, seconds: float, batch_size: int, lr: float,
                    mask_id: int, pad_id: int, first_regular: int, seed: int) -> dict[str, Any]:
    """Train ``classifier``'s encoder as a masked LM on ``ids`` for ``seconds``; returns figures."""
    import math

    import torch
    from transformers import ModernBertForMaskedLM

    from apps.sentiment.model import pad

    mlm = ModernBertForMaskedLM(classifier.config)
    mlm.model.load_state_dict(classifier.model.state_dict())
    mlm.train()
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    started = time.perf_counter()
    step, loss_avg, tokens = 0, None, 0
    order = list(range(len(ids)))
    while time.perf_counter() - started < seconds:
        rng.shuffle(order)
        order.sort(key=lambda i: len(ids[i]) + 4 * rng.random())
        batches = [order[b:b + batch_size] for b in range(0, len(order), batch_size)]
        rng.shuffle(batches)
        for batch in batches:
            done = (time.perf_counter() - started) / seconds
            if done >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, done / 0.05 + 1e-3) * 0.5 * (1 + math.cos(math.pi * done))
            input_ids, attention = pad([ids[i] for i in batch], pad_id)  # (B, T)
            masked, labels = mask_tokens(input_ids, attention, mask_id, classifier.config.vocab_size, first_regular, gen)
            if not bool((labels != -100).any()):
                continue  # a batch of very short texts can draw no target: its loss would be NaN
            loss = mlm(input_ids=masked, attention_mask=attention, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
            optimizer.step()
            step += 1
            tokens += int(attention.sum())
            loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
    classifier.model.load_state_dict(mlm.model.state_dict())
    return {"mlm_steps": step, "mlm_loss": round(loss_avg or 0.0, 4), "mlm_seconds": round(time.perf_counter() - started, 1),
            "mlm_texts": len(ids), "mlm_tokens": tokens}
