"""Inference: stream replies from a loaded model, batching concurrent requests."""

from __future__ import annotations

from appkit.engine.engine import Engine, Reply, ReplyStats, ReplyStream
from appkit.engine.sampling import GREEDY, GenerationParams

__all__ = ["GREEDY", "Engine", "GenerationParams", "Reply", "ReplyStats", "ReplyStream"]
