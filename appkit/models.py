"""Find trained models: by directory, by registered name, or the app's active one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appkit.config import Settings
from appkit.errors import ModelError


def resolve_model_path(app: str, model: str | None, settings: Settings, *, train_hint: str = "") -> tuple[str, Path]:
    """(name, directory) of the model to use.

    ``model`` may be a directory holding a saved model, a name registered with the store, or
    None for the app's active model.
    """
    if model is not None:
        candidate = Path(model).expanduser()
        if (candidate / "config.json").is_file():
            return candidate.name, candidate
    from appkit.store import open_store

    with open_store(settings) as store:
        if model is None:
            record = store.active_model(app)
            if record is None:
                hint = train_hint or f"train one for the {app} app first"
                raise ModelError(f"no {app} model is trained yet: {hint}.")
        else:
            return model, _registered_path(store, model, f"model {model!r}", "")
    return record.name, _checked(record.path, f"model {record.name!r}")


def resolve_base(base: str, settings: Settings) -> Path:
    """The directory of a base model given as a directory or as a registered name (``appkit pretrain``)."""
    candidate = Path(base).expanduser()
    if (candidate / "config.json").is_file():
        return candidate
    if candidate.is_dir():
        raise ModelError(f"--base {base}: the folder holds no config.json, so it is not a saved model.")
    from appkit.store import open_store

    with open_store(settings) as store:
        return _registered_path(store, base, f"--base {base}", " (a base comes from `appkit pretrain --corpus ...`, "
                                "or is any local Hugging Face checkpoint folder)")


def _registered_path(store: Any, name: str, what: str, hint: str) -> Path:
    from appkit.errors import NotFoundError

    try:
        record = store.get_model(name)
    except NotFoundError:
        raise ModelError(f"{what} is neither a model folder nor a registered model; see `appkit models list`{hint}.") from None
    return _checked(record.path, what)


def _checked(path: str, what: str) -> Path:
    if not (Path(path) / "config.json").is_file():
        raise ModelError(f"{what} is registered at {path}, but no model is there any more.")
    return Path(path)
