"""Generation parameters and the choice of the next token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appkit.errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class GenerationParams:
    """How to sample a reply. ``temperature=0`` means greedy (deterministic).

    ``min_new_tokens``: end-of-turn (and every other stop token) cannot be chosen before the reply
    has this many tokens, so a model that tends to stop early still reaches a length (the writer
    app uses it for drafts that must land near a word count). Stop strings still apply.
    """

    max_new_tokens: int = 200
    min_new_tokens: int = 0
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ConfigError(
                f"min_new_tokens must be between 0 and max_new_tokens ({self.max_new_tokens}), got {self.min_new_tokens}."
            )
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0 = off), got {self.top_k}.")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0 (1 = off), got {self.repetition_penalty}.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


GREEDY = GenerationParams(temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0)


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty: divide positive and multiply negative logits of already-seen tokens.

    Args:
        logits: (V,) scores of one sequence.
        seen: (N,) token ids already in the reply.
    """
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    scores = logits.gather(0, seen)
    scores = scores.where(scores < 0, scores / penalty).where(scores >= 0, scores * penalty)
    return logits.scatter(0, seen, scores)


def choose_token(logits: torch.Tensor, params: GenerationParams, generator: torch.Generator | None) -> int:
    """Pick the next token id from one sequence's (V,) logits."""
    return choose_tokens(logits[None], params, generator)[0]


def choose_tokens(logits: torch.Tensor, params: GenerationParams, generator: torch.Generator | None) -> list[int]:
    """Pick the next token of each row of (k, V) ``logits``, all sampled with the same ``params``.

    One set of tensor operations for the rows: a server decoding 32 replies together would
    otherwise spend more time choosing tokens one row at a time than running the model. With
    top-k on, only the k best tokens of each row are softmaxed, cut by top-p and drawn from
    (the others have probability 0): a full-vocabulary softmax and sort per step cost a quarter
    of a tiny model's decode step.
    """
    import torch

    if params.greedy:
        return logits.argmax(dim=-1).tolist()
    logits = logits.float() / params.temperature
    if params.top_k and params.top_k < logits.shape[-1]:
        values, index = torch.topk(logits, params.top_k, dim=-1)  # (n, k), best first
    else:
        values, index = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(values, dim=-1)
    if params.top_p < 1.0:
        # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
        probs = probs.masked_fill(probs.cumsum(-1) - probs > params.top_p, 0.0)
    picked = torch.multinomial(probs, 1, generator=generator)  # (n, 1): a position among the kept
    return index.gather(-1, picked).squeeze(-1).tolist()
