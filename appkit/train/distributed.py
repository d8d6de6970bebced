"""Multi-process training through torchrun (DDP): who am I, and agree with the others."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> DistContext:
        """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); single process otherwise."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(ctx: DistContext, device: str) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU) once per process."""
    if not ctx.enabled:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def all_reduce_sum(ctx: DistContext, values: list[float], device: Any) -> list[float]:
    """Element-wise sum of ``values`` over all processes (identity when single-process)."""
    if not ctx.enabled:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(ctx: DistContext) -> None:
    """Wait until every process gets here."""
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def broadcast_flag(ctx: DistContext, flag: bool, device: Any) -> bool:
    """True on every process if it is True on any (e.g. stop requested)."""
    return bool(all_reduce_sum(ctx, [float(flag)], device)[0] > 0) if ctx.enabled else flag
