"""Record a training run in the store and register what it produced.

Every trainer (pretrain, support, writer, sentiment ...) does the same bookkeeping: a run row
while it trains, its end status however it ends, and the finished model in the registry as
the app's active one. One place, so ``appkit models list`` and the runs table read alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import ConfigError

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.train.pipeline import TrainedModel


@dataclass
class TrackedRun:
    """A run being recorded; ``register`` it once its model is saved."""

    settings: Settings
    app: str
    name: str
    run_id: int
    registered: bool = field(default=False, init=False)

    def register(self, trained: TrainedModel, *, data: dict[str, Any] | None = None) -> None:
        """Finish the run and make ``trained`` (a language model) the app's active model."""
        self.finish(trained.path, base=trained.base, preset=trained.preset, params=trained.parameters,
                    metrics=trained.metrics, data={**trained.data, **(data or {})})

    def finish(self, path: Path, *, base: str | None, preset: str | None, params: int | None,
               metrics: dict[str, Any], data: dict[str, Any]) -> None:
        """Finish the run and register the model saved at ``path`` as the app's active one."""
        from appkit.store import open_store

        with open_store(self.settings) as store:
            store.finish_run(self.run_id, "finished", metrics=metrics, model_name=self.name)
            store.register_model(self.name, self.app, str(path), base=base, preset=preset, params=params,
                                 metrics=metrics, data=data, status="active", replace=True)
        self.registered = True


# A model name becomes a folder under models/ and runs/: one plain path component, nothing else.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: str) -> str:
    """``name`` if it is a valid model name (a ConfigError saying what is allowed otherwise).

    Names become folders (``models/NAME``, ``runs/NAME``) that a new run replaces, so a name
    holding a path (``..``, ``/x``, ``a/b``) would let a run delete folders outside its own.
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"--name {name!r}: a model name is 1-100 letters, digits, '-', '_' or '.', starting with a letter "
            "or digit (it names a folder in APPKIT_HOME, so no '/', '..' or spaces); e.g. support-v2."
        )
    return name


def run_name(app: str, name: str | None) -> str:
    """``name`` (checked by ``check_name``), or a new ``<app>-<date>-<time>`` one."""
    return check_name(name) if name is not None else time.strftime(f"{app}-%Y%m%d-%H%M%S")


def _claim(store: Any, settings: Settings, app: str, name: str, *, resume: bool, replace: bool) -> None:
    """Refuse a run whose name is taken by another app, or by this app without ``replace``/``resume``.

    A new run empties ``runs/NAME`` and replaces ``models/NAME``: that must never hit another
    app's model or run, nor one of the app's own models by accident.
    """
    from appkit.errors import NotFoundError

    try:
        owner: str | None = store.get_model(name).app
    except NotFoundError:
        owner = None
    others = {r.app for r in store.list_runs(model_name=name)} - {app}
    if owner not in (None, app) or others:
        raise ConfigError(f"--name {name}: the {owner or sorted(others)[0]} app has a model or run of that name; "
                          "pick another name (see `appkit models list`).")
    if resume or replace:
        return
    if owner == app:
        raise ConfigError(f"--name {name}: a {app} model of that name exists; pass --replace to train a new one "
                          "in its place, or pick another name.")
    for folder in (settings.models_dir / name, settings.runs_dir / name):
        if folder.exists():
            raise ConfigError(f"--name {name}: {folder} exists from an earlier run; pass --resume to continue an "
                              "interrupted run, --replace to start over in its place, or pick another name.")


@contextmanager
def tracked_run(settings: Settings, app: str, name: str, config: dict[str, Any],
                data_fingerprint: str | None = None, *, resume: bool = False,
                replace: bool = False) -> Iterator[TrackedRun]:
    """A run row for the duration of the block: failed/interrupted if the block raises.

    Raises:
        ConfigError: ``name`` is invalid, belongs to another app, or is taken by one of this app's
            models or runs and neither ``resume`` nor ``replace`` is set. Nothing is written then.
    """
    from appkit.store import open_store

    check_name(name)
    with open_store(settings) as store:
        _claim(store, settings, app, name, resume=resume, replace=replace)
        run = store.start_run(app, name, config=config, data_fingerprint=data_fingerprint)
    tracked = TrackedRun(settings, app, name, run.id)
    try:
        yield tracked
    except BaseException as e:
        from appkit.train.loop import TrainingInterrupted

        status = "interrupted" if isinstance(e, (TrainingInterrupted, KeyboardInterrupt)) else "failed"
        with open_store(settings) as store:
            store.finish_run(run.id, status)
        raise


def latest_unfinished_run(settings: Settings, app: str, command: str) -> str:
    """The model name of the app's latest interrupted run (for ``--resume`` without ``--name``)."""
    from appkit.errors import CheckpointError
    from appkit.store import open_store

    with open_store(settings) as store:
        for run in store.list_runs(app):
            if run.status in ("running", "interrupted") and run.model_name:
                return run.model_name
    raise CheckpointError(f"--resume: no interrupted {app} run to continue. Run `{command}` without --resume to start fresh.")
