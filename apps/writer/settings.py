"""The writer app's ``[writer]`` table of appkit.toml: how drafts are sampled.

    [writer]
    temperature = 0.8
    top_p = 0.95
    top_k = 50
    repetition_penalty = 1.15

``appkit writer write --temperature`` overrides the first for one draft.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WriterSettings:
    """Sampling of drafts: a little warmer than a support reply, and wary of repeating itself."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.15


__all__ = ["WriterSettings"]
