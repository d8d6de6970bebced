"""Atomic training checkpoints: a crash or kill at any moment leaves the last one intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appkit.errors import CheckpointError
from appkit.files import atomic_file

STATE_FILE = "state.pt"
BEST_FILE = "best.pt"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same directory, fsync, then rename over ``path``."""
    import torch

    with atomic_file(path, "wb") as f:
        torch.save(obj, f)


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_atomic``.

    Checkpoints hold tensors and plain dicts, lists and numbers only, so they are read with
    ``weights_only=True``: a file planted in a run folder cannot run code when loaded.
    """
    import torch

    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from. Run without --resume to start fresh.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a torn or foreign file, or one holding more than tensors: say which one
        if "Weights only load failed" in str(e):
            raise CheckpointError(
                f"{path}: the checkpoint cannot be read: it holds Python objects besides tensors and plain "
                "data, which appkit's checkpoints never do, so it was not loaded. Run without --resume to start fresh."
            ) from None
        raise CheckpointError(f"{path}: the checkpoint cannot be read ({e}).") from None
