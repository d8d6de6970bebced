"""Token choice: top-k and top-p keep the right tokens, with their renormalised probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from appkit.engine.sampling import GenerationParams, choose_token, choose_tokens


def _expected(logits: list[float], temperature: float, top_k: int, top_p: float) -> dict[int, float]:
    order = sorted(range(len(logits)), key=lambda i: -logits[i])[: top_k or len(logits)]
    weights = [math.exp(logits[i] / temperature) for i in order]
    probs = [w / sum(weights) for w in weights]
    kept, mass = [], 0.0
    for i, p in zip(order, probs):
        if mass >= top_p:  # the smallest prefix that reaches top_p
            break
        kept.append((i, p))
        mass += p
    total = sum(p for _, p in kept)
    return {i: p / total for i, p in kept}


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, 3, 1.0), (0.7, 0, 0.8), (1.3, 4, 0.9)])
def test_sampled_frequencies_match_the_kept_tokens_probabilities(temperature, top_k, top_p):
    logits = [2.0, 1.5, 0.2, 1.0, -1.0, 0.9, -3.0, 0.0]
    params = GenerationParams(temperature=temperature, top_k=top_k, top_p=top_p)
    rows = torch.tensor([logits] * 40_000)
    drawn = choose_tokens(rows, params, torch.Generator().manual_seed(0))
    expected = _expected(logits, temperature, top_k, top_p)
    assert set(drawn) == set(expected)  # nothing outside top-k / top-p is ever chosen
    for token, p in expected.items():
        assert drawn.count(token) / len(drawn) == pytest.approx(p, abs=0.01)


def test_greedy_takes_each_rows_best_and_one_row_matches_a_batch():
    rows = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 1.0]])
    greedy = GenerationParams(temperature=0)
    assert choose_tokens(rows, greedy, None) == [1, 0]
    assert choose_token(rows[1], greedy, None) == 0
