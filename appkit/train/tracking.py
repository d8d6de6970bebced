"""Record a training run in the store and register what it produced.

Every trainer (pretrain, support, writer, sentiment ...) does the same bookkeeping: a run row
while it trains, its end status however it ends, and the finished model in the registry as
the app's active one. One place, so ``appkit models list`` and the runs table read alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def run_name(app: str, name: str | None) -> str:
    """``name``, or a new ``<app>-<date>-<time>`` one."""
    return name or time.strftime(f"{app}-%Y%m%d-%H%M%S")


@contextmanager
def tracked_run(settings: Settings, app: str, name: str, config: dict[str, Any],
                data_fingerprint: str | None = None) -> Iterator[TrackedRun]:
    """A run row for the duration of the block: failed/interrupted if the block raises."""
    from appkit.store import open_store

    with open_store(settings) as store:
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
