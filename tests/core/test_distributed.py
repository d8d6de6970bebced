"""DDP through torchrun: 2 CPU processes with the gloo backend."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.e2e  # two torchrun processes
@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun is not installed")
def test_two_processes_agree_on_loss_and_weights_and_only_rank_0_writes(toy_history, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(WORKER), str(toy_history), str(run_dir)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = sorted((json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("RESULT ")),
                     key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == [0, 1] and results[0]["world"] == 2
    assert results[0]["final_loss"] == results[1]["final_loss"]
    assert results[0]["val"] == results[1]["val"]
    assert results[0]["weights"] == results[1]["weights"], "DDP keeps the replicas identical"
    assert [r["writes_metrics"] for r in results] == [True, False]
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 13)), "one writer: every step logged exactly once"
    assert (run_dir / "state.pt").exists() and (run_dir / "loss.png").exists()
