"""The training loop on a nano model: learning, budgets, early stopping, checkpoints, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appkit.data import read_history
from appkit.train.loop import TrainConfig, Trainer, eval_interval
from appkit.train.packing import PackedDataset, encode_examples


def _datasets(toy_history: Path):
    from appkit.data import split_conversations
    from appkit.model.build import build_model
    from appkit.model.presets import get_preset
    from appkit.tokenizer import train_tokenizer

    train, val = split_conversations(read_history(toy_history), val_fraction=0.2, seed=0)
    tok = train_tokenizer([t.text for c in train for t in c.turns], vocab_size=512)
    model = build_model(get_preset("nano"), tok)
    pad = tok.pad_token_id
    return model, PackedDataset(encode_examples(tok, train, 256), 256, pad), PackedDataset(encode_examples(tok, val, 256), 256, pad)


def test_training_lowers_validation_loss_and_writes_metrics_and_plot(toy_history, tmp_path):
    model, train, val = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, learning_rate=4e-3, max_steps=60, eval_every=20, progress=False)
    trainer = Trainer(model, train, val, cfg, tmp_path)
    before = trainer.evaluate()
    result = trainer.run()
    assert result.steps == 60 and result.stopped == "max_steps"
    assert result.best_val_loss < before * 0.5
    assert result.val_perplexity == pytest.approx(math.exp(result.best_val_loss), rel=1e-3)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_loss" in r] == [20, 40, 60]
    assert all(r["tokens_per_s"] > 0 for r in records if "loss" in r)
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_weights_stay_float32_whatever_precision_the_steps_compute_in(toy_history, tmp_path):
    import torch

    from appkit.train.optim import autocast_for, cpu_computes_bf16

    model, train, val = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, learning_rate=4e-3, max_steps=20, eval_every=10, progress=False)
    trainer = Trainer(model, train, val, cfg, tmp_path)
    # bf16 products where this CPU computes bf16 natively (Zen 4, Sapphire Rapids), fp32 elsewhere.
    with autocast_for(torch.device("cpu")):
        computed = torch.ones(2, 2) @ torch.ones(2, 2)
    assert computed.dtype == (torch.bfloat16 if cpu_computes_bf16() else torch.float32)
    before = trainer.evaluate()
    result = trainer.run()
    assert result.best_val_loss < before
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping_ends_a_run_that_stopped_improving(toy_history, tmp_path):
    model, train, val = _datasets(toy_history)
    # A learning rate this high diverges or plateaus quickly; patience 1 must end the run early.
    cfg = TrainConfig(batch_size=4, learning_rate=0.5, max_steps=400, eval_every=5, patience=1, progress=False)
    result = Trainer(model, train, val, cfg, tmp_path).run()
    assert result.stopped == "early_stop"
    assert result.steps < 400


def test_time_budget_stops_training(toy_history, tmp_path):
    model, train, val = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, max_steps=100_000, max_minutes=0.05, progress=False)
    result = Trainer(model, train, val, cfg, tmp_path).run()
    assert result.stopped == "max_minutes" and result.steps < cfg.max_steps


def test_a_short_automatic_run_is_not_compiled(toy_history, tmp_path):
    model, train, val = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, max_steps=15, compile=None, progress=False)
    result = Trainer(model, train, val, cfg, tmp_path).run()
    assert result.steps == 15 and not result.compiled
    assert result.compile_note.startswith("not compiled: about") and "too little to repay" in result.compile_note


def _step_losses(run_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


@pytest.mark.e2e  # compiling takes ~20 s even for nano
def test_a_compiled_run_learns_as_the_uncompiled_one(toy_history, tmp_path, monkeypatch):
    from appkit.train import loop

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # really compile
    monkeypatch.setattr(loop, "COMPILE_PAYS_AFTER_S", 0.0)  # an automatic run compiles after 10 steps
    runs = {}
    for name, compile in (("eager", False), ("auto", None)):
        model, train, val = _datasets(toy_history)
        cfg = TrainConfig(batch_size=4, learning_rate=4e-3, max_steps=30, eval_every=30, log_every=1,
                          compile=compile, progress=False)
        runs[name] = (Trainer(model, train, val, cfg, tmp_path / name).run(), _step_losses(tmp_path / name))
    (eager, eager_losses), (auto, auto_losses) = runs["eager"], runs["auto"]
    assert not eager.compiled and auto.compiled and auto.compile_note.startswith("compiled (torch.compile at step 10")
    assert auto_losses[:10] == eager_losses[:10]  # the same uncompiled steps first
    assert auto_losses[10:] == pytest.approx(eager_losses[10:], rel=0.05)
    assert auto.best_val_loss == pytest.approx(eager.best_val_loss, rel=0.02)


_WITHOUT_A_COMPILER = """
import sys
from pathlib import Path
from appkit.errors import TrainingError
from appkit.train import loop
from tests.core.test_training import _datasets

loop.COMPILE_PAYS_AFTER_S = 0.0  # an automatic run compiles after 10 steps
out = Path(sys.argv[2])
for compile in (None, True):
    model, train, val = _datasets(Path(sys.argv[1]))
    cfg = loop.TrainConfig(batch_size=4, max_steps=15, compile=compile, progress=False)
    try:
        result = loop.Trainer(model, train, val, cfg, out / str(compile)).run()
        print(compile, result.steps, result.compiled, result.compile_note)
    except TrainingError as exc:
        print(compile, "error", exc)
"""


@pytest.mark.e2e  # a fresh process whose torch has no C++ compiler to call
def test_a_compiler_that_fails_leaves_an_automatic_run_uncompiled(toy_history, tmp_path):
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    done = subprocess.run([sys.executable, "-c", _WITHOUT_A_COMPILER, str(toy_history), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    auto, asked = done.stdout.strip().splitlines()[-2:]
    assert auto.startswith("None 15 False not compiled: torch.compile failed"), auto
    assert asked.startswith("True error --compile failed on the first compiled step") and "without --compile" in asked


def _train_cmd(history: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "appkit", "train-support", "--history", str(history), "--preset", "nano",
            "--max-steps", "200", "--batch-size", "2", "--name", "resumable", *extra]


def _wait_for_step(metrics: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stdout.read() if proc.stdout else ''}")
        if metrics.exists():
            steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if line.strip()]
            if steps and max(steps) >= step:
                return
        time.sleep(0.05)
    raise AssertionError(f"step {step} not reached in {timeout}s")


def _checkpoint_step(run_dir: Path) -> int:
    from appkit.train import checkpoint

    return checkpoint.load(run_dir / checkpoint.STATE_FILE)["state"]["step"]


@pytest.mark.e2e  # a training process killed and started again
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_killed_training_resumes_from_its_checkpoint(sig, toy_history, appkit_home):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run_dir = appkit_home / "runs" / "resumable"
    proc = subprocess.Popen(_train_cmd(toy_history), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_step(run_dir / "metrics.jsonl", 45, proc)  # past the first checkpoint (step 20/40)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, out
        assert "--resume" in out and "Traceback" not in out
        saved = _checkpoint_step(run_dir)
        assert saved >= 45  # SIGINT saves the step it stopped at
    else:
        assert proc.returncode == -signal.SIGKILL
        saved = _checkpoint_step(run_dir)
        assert 20 <= saved < 200
    assert not (appkit_home / "models" / "resumable").exists()  # nothing half-written

    done = subprocess.run(_train_cmd(toy_history, "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [s for s in steps if s % 5 == 0 or s == 1]
    assert max(steps) == 200  # the same total as an uninterrupted run
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    loss_steps = [r["step"] for r in logged if "loss" in r]
    assert loss_steps == sorted(set(loss_steps)), "no step is logged twice after the resume"
    assert train_steps
    meta = json.loads((appkit_home / "models" / "resumable" / "appkit.json").read_text())
    assert meta["metrics"]["steps"] == 200


@pytest.mark.e2e  # a fresh appkit process: kept out of the quick tier, as the other process tests
def test_resume_refuses_other_data(toy_history, appkit_home, tmp_path):
    from tests.conftest import toy_rows, write_pairs_csv

    env = {**os.environ}
    first = subprocess.run(_train_cmd(toy_history, "--max-steps", "5"), env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    other = write_pairs_csv(tmp_path / "other.csv", toy_rows(60, seed=7))
    again = subprocess.run(_train_cmd(other, "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0
    assert "different data" in again.stderr and "Traceback" not in again.stderr


def test_validation_never_takes_more_than_a_tenth_of_training_time():
    cfg = TrainConfig()
    assert eval_interval(1000, cfg) == 100, "about 10 validations a run by default"
    assert eval_interval(50, cfg) == 10, "but not more often than every 10 steps"
    # A validation as long as 20 steps: every 200 steps at least, whatever the run's length.
    assert eval_interval(1000, cfg, step_s=0.5, val_s=10.0) == 200
    assert eval_interval(240, cfg, step_s=0.5, val_s=11.0) == 220
    assert eval_interval(1000, cfg, step_s=0.5, val_s=1.0) == 100, "a cheap validation keeps the default"
    assert eval_interval(1000, TrainConfig(eval_every=7), step_s=0.5, val_s=10.0) == 7, "an explicit interval wins"


def test_a_costly_validation_split_is_validated_less_often(toy_history, tmp_path):
    model, train, val = _datasets(toy_history)
    # A validation split 60 batches long costs about 20 training steps: validating every 10
    # steps would spend most of the run on it, so after the first one only the final remains.
    costly = PackedDataset(val.examples * (240 // max(1, len(val.rows))), val.row_length, val.pad_id)
    assert len(costly.rows) >= 200
    cfg = TrainConfig(batch_size=4, max_steps=100, progress=False)
    result = Trainer(model, train, costly, cfg, tmp_path).run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    validated = [r["step"] for r in records if "val_loss" in r]
    assert result.steps == 100 and validated[0] == 10 and validated[-1] == 100
    # The default would validate 10 times (every 10 steps). How much less often depends on
    # measured timings (about [10, 100] on an idle machine), so only the behaviour is asserted.
    assert len(validated) <= 4, validated
