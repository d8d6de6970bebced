"""Deterministic train/validation split by conversation (or document: anything with an ``id``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, TypeVar

from appkit.errors import ConfigError


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_HasId)


def _rank(seed: int, index: int, conv: _HasId) -> tuple[str, int]:
    # sha256, not hash(): the split must not change with PYTHONHASHSEED. Keyed by id alone (not
    # the source, which holds the path as typed): `../data/x.csv` and `/abs/data/x.csv` must split
    # alike, so an evaluation finds the same held-out conversations as training did. Adding
    # conversations to a file keeps most earlier ones on the side they were on.
    digest = hashlib.sha256(f"{seed}\x00{conv.id}".encode()).hexdigest()
    return (digest, index)


def split_conversations(
    convs: Sequence[Item], *, val_fraction: float = 0.1, seed: int = 0, min_val: int = 1
) -> tuple[list[Item], list[Item]]:
    """Split into (train, validation) by whole conversations, the same way for the same input and seed.

    The validation set gets ``round(len * val_fraction)`` conversations, at least ``min_val``
    and at most all but one, so with two or more conversations both sides are non-empty.
    Both lists keep the input order.

    Raises:
        ConfigError: ``val_fraction`` is outside [0, 1) or ``min_val`` is negative.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be at least 0 and below 1, got {val_fraction}.")
    if min_val < 0:
        raise ConfigError(f"min_val must be 0 or more, got {min_val}.")
    n = len(convs)
    if n < 2:
        return list(convs), []
    n_val = min(max(round(n * val_fraction), min_val), n - 1)
    ranked = sorted(range(n), key=lambda i: _rank(seed, i, convs[i]))
    val_idx = set(ranked[:n_val])
    train = [c for i, c in enumerate(convs) if i not in val_idx]
    val = [c for i, c in enumerate(convs) if i in val_idx]
    return train, val
