"""Train the support bot: read a history, train a chat model, register it as the active model."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appkit.config import Settings, load_settings
from appkit.data import read_history_with_report
from appkit.errors import CheckpointError
from appkit.train.pipeline import ChatTrainingOptions, TrainedChatModel, train_chat_model

APP_NAME = "support"


def train_support(
    history: str | Path,
    *,
    name: str | None = None,
    options: ChatTrainingOptions | None = None,
    resume: bool = False,
    settings: Settings | None = None,
    read_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> TrainedChatModel:
    """Train a support model on ``history`` and make it the support app's active model.

    Args:
        history: a CSV/TSV/JSONL/JSON file of past conversations (see ``appkit.data.read_history``).
        name: the model's name; a new timestamped one by default, the interrupted run's with ``resume``.
        options: training choices (preset, budgets, device ...).
        resume: continue the interrupted run called ``name`` (or the latest interrupted one).
        read_options: shape/column/speaker-map overrides for the reader.
    """
    from appkit.store import open_store

    settings = settings or load_settings()
    options = options or ChatTrainingOptions(device=settings.resolve_device())
    conversations, read_report = read_history_with_report(history, **(read_options or {}))
    log(read_report.summary())

    with open_store(settings) as store:
        if resume and name is None:
            name = _latest_unfinished_run(store)
        name = name or time.strftime(f"{APP_NAME}-%Y%m%d-%H%M%S")
        run = store.start_run(APP_NAME, name, config={"history": str(history), "options": _plain(options),
                                                    "resume": resume})
    try:
        trained = train_chat_model(
            conversations, name=name, models_dir=settings.models_dir, runs_dir=settings.runs_dir,
            options=options, resume=resume, log=log,
        )
    except BaseException as e:
        from appkit.train.loop import TrainingInterrupted

        status = "interrupted" if isinstance(e, (TrainingInterrupted, KeyboardInterrupt)) else "failed"
        with open_store(settings) as store:
            store.finish_run(run.id, status)
        raise

    with open_store(settings) as store:
        store.finish_run(run.id, "finished", metrics=trained.metrics, model_name=name)
        store.register_model(
            name, APP_NAME, str(trained.path), base=trained.base, preset=trained.preset,
            params=trained.parameters, metrics=trained.metrics,
            data={**trained.data, "history": str(history), "curation": trained.curation.as_dict()},
            status="active", replace=True,
        )
    log(f"saved {trained.path} and made it the active support model")
    return trained


def _latest_unfinished_run(store: Any) -> str:
    for run in store.list_runs(APP_NAME):
        if run.status in ("running", "interrupted") and run.model_name:
            return run.model_name
    raise CheckpointError("--resume: no interrupted support run to continue. Run without --resume to start fresh.")


def _plain(options: ChatTrainingOptions) -> dict[str, Any]:
    return {k: v for k, v in vars(options).items() if k != "is_toxic"}
