"""Settings: where appkit keeps its files, which database and which device it uses.

Resolution order, later wins: built-in defaults < ``appkit.toml`` (in APPKIT_HOME, then in the
current directory) < environment variables < explicit overrides. Reading settings creates
nothing on disk; directories are made by the code that writes into them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from appkit.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    home: Path
    database_url_override: str | None = None
    device: str = "auto"
    # Everything else found in appkit.toml, by section (e.g. ``tui.bindings``, ``safety``).
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def prompts_dir(self) -> Path:
        """User overrides of prompt templates (see appkit.prompts)."""
        return self.home / "prompts"

    @property
    def database_url(self) -> str:
        """The configured URL, or SQLite inside APPKIT_HOME."""
        if self.database_url_override:
            return self.database_url_override
        return f"sqlite:///{self.home / 'appkit.db'}"

    def section(self, name: str) -> dict[str, Any]:
        """A table of appkit.toml by dotted name, e.g. ``section("tui.bindings")``; {} if absent."""
        node: Any = self.sections
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return node if isinstance(node, dict) else {}

    def resolve_device(self) -> str:
        """The torch device to use: the configured one, or the best available for ``auto``."""
        if self.device != "auto":
            return self.device
        import torch  # lazy: `appkit --help` must not import torch

        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}).") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror}).") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings from defaults, appkit.toml files, environment and ``overrides``.

    Args:
        overrides: ``home``, ``database_url`` or ``device``; None values are ignored.

    Raises:
        ConfigError: an appkit.toml cannot be parsed or a value is invalid.
    """
    env_home = os.environ.get("APPKIT_HOME")
    home = Path(overrides.get("home") or env_home or Path.home() / ".appkit").expanduser()

    data: dict[str, Any] = {}
    for candidate in (home / "appkit.toml", Path.cwd() / "appkit.toml"):
        if candidate.is_file():
            data = _merge(data, _read_toml(candidate))
    core = data.get("appkit", {})
    if not isinstance(core, dict):
        raise ConfigError("appkit.toml: [appkit] must be a table.")

    # A home named in appkit.toml applies only when neither the environment nor the caller set one.
    if not (overrides.get("home") or env_home) and core.get("home"):
        home = Path(str(core["home"])).expanduser()

    database_url = (
        overrides.get("database_url") or os.environ.get("APPKIT_DATABASE_URL") or core.get("database_url")
    )
    device = str(overrides.get("device") or os.environ.get("APPKIT_DEVICE") or core.get("device") or "auto")
    if device.split(":")[0] not in DEVICES:
        raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)} (e.g. cuda:1 is fine).")

    sections = {k: v for k, v in data.items() if k != "appkit"}
    return Settings(home=home, database_url_override=database_url, device=device, sections=sections)


def settings_from(ctx: Any) -> Settings:
    """The Settings a CLI command runs with: those the root command resolved, else fresh ones.

    ``ctx`` is a click/typer context; the root ``appkit`` callback stores its Settings there.
    """
    found = ctx.find_object(Settings) if ctx is not None else None
    return found if found is not None else load_settings()


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields replaced."""
    return replace(settings, **changes)
