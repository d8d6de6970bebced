"""Training checkpoints load as data only: tensors, dicts, lists and numbers, never code."""

from __future__ import annotations

import pytest

from appkit.errors import CheckpointError
from appkit.train import checkpoint
from appkit.train.loop import TrainConfig, Trainer
from tests.core.test_training import _datasets


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # unpickling calls open(marker, "w"): the file appears
        return (open, (self.marker, "w"))


def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / checkpoint.STATE_FILE
    checkpoint.save_atomic({"model": {}, "state": _RunsCodeWhenUnpickled(str(marker))}, path)
    with pytest.raises(CheckpointError, match=r"state\.pt: the checkpoint cannot be read"):
        checkpoint.load(path)
    assert not marker.exists()


def test_what_the_trainer_saves_loads_and_resumes(toy_history, tmp_path):
    import torch

    model, train, val = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, max_steps=6, eval_every=3, progress=False)
    trainer = Trainer(model, train, val, cfg, tmp_path)
    trainer.run()
    state = checkpoint.load(tmp_path / checkpoint.STATE_FILE)
    assert state["state"]["step"] == 6 and state["config"]["max_steps"] == 6
    assert set(checkpoint.load(tmp_path / checkpoint.BEST_FILE)) == set(model.state_dict())

    fresh, _, _ = _datasets(toy_history)
    resumed = Trainer(fresh, train, val, cfg, tmp_path)
    resumed.resume()
    assert resumed.state.step == 6
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), state["model"].values()))
