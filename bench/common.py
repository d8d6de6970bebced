"""What every benchmark shares: where the repo and the default data are, and which code is measured."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "support" / "bitext_llm_4.5k"


def code_version() -> str:
    """The appkit commit measured, marked dirty when its working tree differs (others edit it too)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        # Everything a benchmark runs: the framework, the apps, their prompts and the benches themselves.
        dirty = subprocess.run(["git", "status", "--porcelain", "appkit", "apps", "prompts", "bench"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
