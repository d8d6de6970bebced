"""Settings of `appkit serve`: the ``[serve]`` table of appkit.toml, overridden by the command's flags.

    [serve]
    host = "127.0.0.1"          # any other address needs at least one API key (`appkit keys create`)
    port = 8000
    apps = ["support"]          # apps to serve (default: every app with an active model)
    models = []                 # registered models (or model folders) served raw, by name
    max_batch = 32              # replies decoded together per model
    max_queue = 64              # replies waiting per model; one more is answered 429
    max_body_bytes = 1048576    # larger request bodies are answered 413
    max_message_chars = 16000   # a longer message is answered 400
    cors_origins = []           # browser origins allowed to call the API (none by default)
    log_bodies = false          # put message text in the access log (off: private data stays out)
    shutdown_grace_s = 30       # on SIGTERM, running replies get this long to finish
    threads = 0                 # torch CPU threads per worker (0: the cores less one, for the HTTP side)
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from appkit.errors import ConfigError

if TYPE_CHECKING:
    from appkit.config import Settings


@dataclass(frozen=True)
class ServeOptions:
    """Everything `appkit serve` needs besides the Settings."""

    host: str = "127.0.0.1"
    port: int = 8000
    apps: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    workers: int = 1
    max_batch: int = 32
    max_queue: int = 64
    max_body_bytes: int = 1 << 20
    max_message_chars: int = 16_000
    cors_origins: tuple[str, ...] = ()
    log_bodies: bool = False
    shutdown_grace_s: float = 30.0
    threads: int = 0

    def __post_init__(self) -> None:
        for name, low in (("port", 0), ("workers", 1), ("max_batch", 1), ("max_queue", 0), ("max_body_bytes", 1024),
                          ("max_message_chars", 1), ("threads", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"[serve] {name} = {value!r}: expected a whole number >= {low}.")
        if self.port > 65535:
            raise ConfigError(f"[serve] port = {self.port}: expected 0-65535 (0 picks a free port).")
        if not isinstance(self.shutdown_grace_s, (int, float)) or self.shutdown_grace_s < 0:
            raise ConfigError(f"[serve] shutdown_grace_s = {self.shutdown_grace_s!r}: expected seconds >= 0.")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"[serve] cors_origins: {origin!r} is not an origin (expected e.g. https://shop.example).")

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only (then it may run without API keys)."""
        return is_loopback(self.host)

    @property
    def capacity(self) -> int:
        """Replies one model takes at once: decoding plus waiting."""
        return self.max_batch + self.max_queue

    def cpu_threads(self) -> int:
        """Torch threads for one worker on a CPU: ``threads``, or the cores less one shared by the workers.

        The server's own threads (HTTP, streaming) need a core: on 2 cores, a model decoding with
        both ran 1-thread speed or worse through HTTP, and fell to a tenth when another process
        took a core (its threads wait for each other); with one thread it kept its speed.
        """
        import os

        if self.threads:
            return self.threads
        return max(1, ((os.cpu_count() or 2) - 1) // self.workers)

    def to_json(self) -> str:
        """For worker processes (``--workers N``), which rebuild the options from it."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        data = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_options(settings: Settings, **overrides: Any) -> ServeOptions:
    """The ``[serve]`` table of ``settings`` (checked when settings loaded), then the command's
    ``overrides`` (None values are ignored).

    Raises:
        ConfigError: an unknown option, or an override out of range, naming it.
    """
    known = {f.name for f in fields(ServeOptions)}
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown serve option {key!r}.")
        if value is not None:
            values[key] = tuple(value) if isinstance(value, list) else value
    return replace(settings.serve, **values)
