"""What the training loop updates weights with: AdamW, its parameter groups, the schedule, an EMA,
and the precision it computes in.

One rule for weight decay, whatever the model: the weight matrices of the layers that
multiply (linear, attention, LSTM, convolution) are decayed; embeddings (also when the output
layer shares their matrix), norms and biases are not. Decay pulls every row of an embedding
towards zero at every step, including the rows of words a batch never saw, and norms and
biases are too few to overfit.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from appkit.train.loop import TrainConfig


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """The trainable parameters in two AdamW groups: decayed matrices, and the rest undecayed."""
    import torch

    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and id(p) not in embeddings else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW over ``decay_groups``; fused kernels on CUDA."""
    import torch

    return torch.optim.AdamW(decay_groups(model, cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.betas,
                             fused=device.type == "cuda")


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warmup to the peak, then cosine decay to ``min_lr_ratio`` of it at ``total``.

    Warmup lasts ``warmup_share`` of the run, at most ``warmup_steps`` (None: no cap).
    """
    peak = cfg.learning_rate
    warmup = max(1, int(total * cfg.warmup_share))
    if cfg.warmup_steps is not None:
        warmup = min(cfg.warmup_steps, warmup)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = peak * cfg.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast where the hardware computes bf16 natively; fp32 everywhere else.

    The weights and AdamW's moments stay fp32 either way; only the matrix products (and
    attention) run in bf16, with softmax and the loss kept in fp32 by autocast. On CUDA that is
    the usual mixed precision. On a CPU with AVX512-BF16 or AMX (Intel Sapphire Rapids and later,
    AMD Zen 4 and later) the products take about half the time of fp32, the bulk of a step of
    the tiny preset and larger; on older CPUs bf16 is emulated and slower, so they keep fp32.
    """
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cpu_computes_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX tiles)."""
    import torch

    probe = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in probe if check is not None)


class Ema:
    """An exponential moving average of the weights, swapped in to validate and keep the best.

    The decay ramps up as (1 + n) / (10 + n) over the first updates (TensorFlow's
    ExponentialMovingAverage with num_updates): a short run on a small data set (a few dozen
    steps) would otherwise validate and keep weights still mostly made of the random init.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay
        self.updates = 0

    def update(self) -> None:
        import torch

        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The averaged weights in the model for the block; the live ones back after it."""
        import torch

        with torch.no_grad():
            live = [p.detach().clone() for p in self.params]
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
            try:
                yield
            finally:
                for p, v in zip(self.params, live):
                    p.copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": [s.detach().cpu() for s in self.shadow], "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for s, saved in zip(self.shadow, state["shadow"]):
                s.copy_(saved)
        self.updates = int(state["updates"])
