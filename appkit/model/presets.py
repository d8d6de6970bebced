"""Model sizes appkit can build from scratch, and the ``auto`` choice between them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from appkit.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """Shape of a Llama-architecture decoder."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    context_length: int
    # Defaults for training this size: tokens per step = batch_size * context_length.
    batch_size: int
    learning_rate: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    # For tests: builds and trains in seconds.
    "nano": Preset("nano", 64, 2, 4, 4, 176, 256, 8, 3e-3),
    # The CPU demo: ~4M parameters, learns a support history in a few minutes on 2 cores.
    "tiny": Preset("tiny", 256, 4, 4, 4, 688, 512, 8, 2e-3),
    # A workstation GPU, or a patient CPU.
    "small": Preset("small", 512, 8, 8, 4, 1408, 1024, 16, 1e-3),
    # A data-centre GPU: ~100M parameters with a 16k vocabulary.
    "base": Preset("base", 768, 12, 12, 4, 2048, 2048, 16, 6e-4),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of: auto, {', '.join(PRESETS)}.") from None


def auto_preset(n_train_tokens: int, device: str, max_minutes: float | None = None) -> Preset:
    """Pick a size from the data, the device and the time budget.

    On a CPU only ``tiny`` (or ``nano`` for a handful of conversations) can see the data several
    times within minutes. On a GPU the size grows with the data: a model needs roughly 20 tokens
    per parameter to be worth its size, and a short budget caps it at ``small``.
    """
    if n_train_tokens < 20_000:
        return PRESETS["nano"]
    if not device.startswith("cuda"):
        return PRESETS["tiny"]
    if n_train_tokens < 2_000_000 or (max_minutes is not None and max_minutes < 30):
        return PRESETS["small"]
    return PRESETS["base"]
