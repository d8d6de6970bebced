"""An installed (non-editable) wheel carries prompts/ and migrations/ and finds them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_prompts_and_migrations_that_work(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("appkit-*.whl"))
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    code = f"""
import appkit, appkit.resources as r
assert appkit.__file__.startswith({str(target)!r}), appkit.__file__
from appkit.prompts import Prompts
from appkit.store import open_store
from appkit.apps import available_apps
print(r.shipped_dir("migrations"))
print(Prompts().render("support/handoff.j2", reason="asked_for_human").source)
with open_store(url="sqlite:///{tmp_path / 'db.sqlite'}") as store:
    print(store.create_conversation("support").id)
print(sorted(available_apps()))
"""
    # Run from an empty directory with only the installed copy on the path, as a user would.
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("appkit/_bundled/migrations") and str(target) in lines[0]
    assert lines[1] == "shipped" and lines[2] == "1"
    assert "support" in lines[3]
