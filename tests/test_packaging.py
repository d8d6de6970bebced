"""An installed (non-editable) wheel carries prompts/ and migrations/ and finds them."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e  # builds and installs a wheel: about a minute
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


def test_the_declared_python_is_one_the_code_runs_on():
    # appkit.sections reads appkit.toml with tomllib, in the standard library from Python 3.11 on:
    # promising 3.10 (as pyproject and the README did) meant an ImportError on first use.
    config = ast.parse((ROOT / "appkit" / "sections.py").read_text())
    top_level = {alias.name for node in config.body if isinstance(node, ast.Import) for alias in node.names}
    assert "tomllib" in top_level
    supported = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    oldest = next(f"3.{minor}" for minor in range(8, 20) if f"3.{minor}.0" in supported)
    assert oldest == "3.11"
    stated = re.findall(r"Python (3\.\d+)\+", (ROOT / "README.md").read_text())
    assert stated and set(stated) == {oldest}, "the README names the oldest Python that pyproject allows"
