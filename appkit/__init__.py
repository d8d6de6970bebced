"""appkit: train your own language model on your own data and ship chat and content apps on it.

The public API, flat (imports are lazy so ``import appkit`` stays instant and side-effect free):

    import appkit
    appkit.train_support("tickets.csv", preset="tiny", max_minutes=10)
    bot = appkit.load_app("support")
    engine = appkit.load("path/to/model")          # any saved model: engine.stream(messages)
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import (
    AppkitError,
    CheckpointError,
    ConfigError,
    DataError,
    GenerationError,
    ModelError,
    NotFoundError,
    SafetyError,
    StorageError,
    TemplateError,
    TrainingError,
)

if TYPE_CHECKING:
    from appkit.config import Settings, load_settings
    from appkit.data import Conversation, read_history
    from appkit.engine import Engine, GenerationParams
    from appkit.train.pipeline import TrainedChatModel

__version__ = "0.1.0"

_LAZY = {
    "Settings": "appkit.config",
    "load_settings": "appkit.config",
    "Conversation": "appkit.data",
    "read_history": "appkit.data",
    "Engine": "appkit.engine",
    "GenerationParams": "appkit.engine",
    "open_store": "appkit.store",
    "available_apps": "appkit.apps",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'appkit' has no attribute {name!r}")
    return getattr(import_module(module), name)


def load_app(name: str, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> Any:
    """Open an installed app (``"support"``, ...) with its active model or ``model``."""
    from appkit.apps import load_app as _load_app

    return _load_app(name, model=model, settings=settings, **options)


def load(model: str | Path, *, device: str | None = None) -> Engine:
    """Load a saved model (a directory or a registered name) as a streaming ``Engine``."""
    from appkit.config import load_settings
    from appkit.engine import Engine
    from appkit.models import resolve_model_path

    settings = load_settings(device=device)
    _, path = resolve_model_path("", str(model), settings)
    return Engine.load(path, device=settings.resolve_device())


def train_support(history: str | Path, *, name: str | None = None, settings: Settings | None = None,
                  resume: bool = False, retrieval: bool = True, **options: Any) -> TrainedChatModel:
    """Train the support bot on ``history`` and make it the active support model.

    ``options`` are ``ChatTrainingOptions`` fields: preset, base, max_minutes, max_steps, epochs, seed ...
    """
    from appkit.apps import get_app
    from appkit.config import load_settings
    from appkit.train.pipeline import ChatTrainingOptions

    settings = settings or load_settings()
    options.setdefault("device", settings.resolve_device())
    return get_app("support").train(history, settings=settings, name=name, resume=resume, retrieval=retrieval,
                                    options=ChatTrainingOptions(**options))


__all__ = [
    "AppkitError", "CheckpointError", "ConfigError", "DataError", "GenerationError", "ModelError", "NotFoundError",
    "SafetyError", "StorageError", "TemplateError", "TrainingError", "load", "load_app", "train_support",
    *_LAZY,
]
