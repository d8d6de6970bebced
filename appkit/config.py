"""Settings: where appkit keeps its files, which database and device, and every appkit.toml table, typed.

Resolution order, later wins: built-in defaults < ``appkit.toml`` (in APPKIT_HOME, then in the
current directory) < environment variables < explicit overrides. Reading settings creates
nothing on disk; directories are made by the code that writes into them.

One ``Settings`` object composes typed sections (darrenburns/posting's config.py is the model):
``[appkit]`` here, ``settings.safety`` (appkit/safety/settings.py), ``settings.tui``
(appkit/tui/settings.py), ``settings.serve`` (appkit/serve/options.py) and, for each installed
app, ``settings.app(NAME)``: the dataclass the app declares as its ``settings_type``. All of
them are checked when settings load (appkit/sections.py): an unknown table or key, or a value of
the wrong type, is a ConfigError naming the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from appkit.errors import ConfigError
from appkit.safety.settings import SafetySettings
from appkit.sections import TomlFiles, parse_section
from appkit.serve.options import ServeOptions
from appkit.tui.settings import TuiSettings

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class CoreSettings:
    """``[appkit]``: the same three settings as the environment variables and the global flags."""

    home: str | None = None
    database_url: str | None = None
    device: str | None = None


# The framework's own tables; apps add theirs through the registry.
SECTIONS: dict[str, type[Any]] = {"appkit": CoreSettings, "safety": SafetySettings, "tui": TuiSettings,
                                  "serve": ServeOptions}


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    home: Path
    database_url_override: str | None = None
    device: str = "auto"
    safety: SafetySettings = field(default_factory=SafetySettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    serve: ServeOptions = field(default_factory=ServeOptions)
    # Each app's own table by app name, as the type its app declares (missing: its defaults).
    apps: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()  # the appkit.toml files these came from

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

    def app(self, name: str) -> Any:
        """The typed appkit.toml table of app ``name`` (its defaults when no file has one).

        Raises:
            ConfigError: no installed app is called ``name``, or it declares no settings.
        """
        if name in self.apps:
            return self.apps[name]
        from appkit.apps import get_app

        kind = get_app(name).settings_type
        if kind is None:
            raise ConfigError(f"the {name} app has no appkit.toml settings.")
        return kind()

    def with_app(self, name: str, section: Any) -> Settings:
        """A copy whose app ``name`` reads ``section`` (e.g. a command's flag over appkit.toml)."""
        return replace(self, apps={**self.apps, name: section})

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


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings from defaults, appkit.toml files, environment and ``overrides``.

    Args:
        overrides: ``home``, ``database_url`` or ``device``; None values are ignored.

    Raises:
        ConfigError: an appkit.toml cannot be parsed, has a table or key nobody reads, or a
            value of the wrong type; or the device is not one appkit knows.
    """
    env_home = os.environ.get("APPKIT_HOME")
    home = Path(overrides.get("home") or env_home or Path.home() / ".appkit").expanduser()

    files = TomlFiles.read((home / "appkit.toml", Path.cwd() / "appkit.toml"))
    app_types = {name: kind for name, kind in _app_settings_types().items() if name not in SECTIONS}
    files.check_tables([*SECTIONS, *(name for name, kind in app_types.items() if kind is not None)])
    sections = {name: parse_section(kind, files.table(name), name=name, files=files) for name, kind in SECTIONS.items()}
    apps = {name: parse_section(kind, files.table(name), name=name, files=files)
            for name, kind in app_types.items() if kind is not None}
    core: CoreSettings = sections["appkit"]

    # A home named in appkit.toml applies only when neither the environment nor the caller set one,
    # and only from the home's own file: a project folder's appkit.toml (whoever wrote it) must
    # not move the models, the conversation database and the checkpoints appkit loads.
    project_file = Path.cwd() / "appkit.toml"
    if core.home and files.file_of(("appkit", "home")) == str(project_file) and project_file != home / "appkit.toml":
        raise ConfigError(f"{project_file}: [appkit] home may not be set by a project folder's "
                          f"appkit.toml; set APPKIT_HOME or put it in {home / 'appkit.toml'}.")
    if not (overrides.get("home") or env_home) and core.home:
        home = Path(core.home).expanduser()

    database_url = overrides.get("database_url") or os.environ.get("APPKIT_DATABASE_URL") or core.database_url
    device = str(overrides.get("device") or os.environ.get("APPKIT_DEVICE") or core.device or "auto")
    if device.split(":")[0] not in DEVICES:
        raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)} (e.g. cuda:1 is fine).")
    return Settings(home=home, database_url_override=database_url, device=device, safety=sections["safety"],
                    tui=sections["tui"], serve=sections["serve"], apps=apps, files=tuple(files.files))


def _app_settings_types() -> dict[str, type[Any] | None]:
    """Each installed app's settings type (None: it reads no appkit.toml table)."""
    from appkit.apps import available_apps

    return {name: app.settings_type for name, app in available_apps().items()}


def settings_from(ctx: Any) -> Settings:
    """The Settings a CLI command runs with: those the root command resolved, else fresh ones.

    ``ctx`` is a click/typer context; the root ``appkit`` callback stores its Settings there.
    """
    found = ctx.find_object(Settings) if ctx is not None else None
    return found if found is not None else load_settings()


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields replaced."""
    return replace(settings, **changes)
