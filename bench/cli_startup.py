"""How long `appkit --help` and a light command take to start, as a user's shell sees them.

Each run is a fresh process (`python -m appkit ...`), so it includes the interpreter, appkit's
imports and typer: the wall time a person waits. The median of --runs is reported with the
fastest and slowest. The test suite only checks that no heavy library (torch, transformers,
sqlalchemy, textual) is imported by --help; the time target lives here, because a time bound
in a test fails whenever the machine is busy.

Target: `appkit --help` median under 1.0 s on 2 CPU cores.

    python bench/cli_startup.py                 # 10 runs of each command
    python bench/cli_startup.py --runs 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, code_version  # noqa: E402

TARGET_HELP_S = 1.0
COMMANDS = {
    "appkit --help": ["--help"],
    "appkit models list": ["models", "list"],  # opens the SQLite store: a light command that does work
}


def time_command(args: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Wall seconds of ``runs`` fresh ``python -m appkit ARGS`` processes (after one untimed warm-up)."""
    command = [sys.executable, "-m", "appkit", *args]
    subprocess.run(command, env=env, cwd=REPO, capture_output=True, check=True)  # warm the file cache
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=REPO, capture_output=True, check=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="appkit-bench-home-") as home:
        env = {**os.environ, "APPKIT_HOME": home}
        env.pop("APPKIT_DATABASE_URL", None)
        results: dict[str, Any] = {}
        for label, argv in COMMANDS.items():
            times = time_command(argv, args.runs, env)
            results[label] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                              "max_s": round(max(times), 3)}
            print(f"  {label}: {results[label]['median_s']:.3f} s", file=sys.stderr, flush=True)

    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'max s':>7}")
    for label, r in results.items():
        print(f"{label:<22} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['max_s']:>7.3f}")
    help_s = results["appkit --help"]["median_s"]
    met = help_s < TARGET_HELP_S
    print(f"target: `appkit --help` median < {TARGET_HELP_S} s: {'met' if met else 'NOT met'} ({help_s:.3f} s)")
    print(json.dumps({"bench": "cli_startup", "code": code_version(), "machine": platform.machine(),
                      "cpus": os.cpu_count(), "python": platform.python_version(), "runs": args.runs,
                      "results": results, "target_help_s": TARGET_HELP_S, "target_met": met}))


if __name__ == "__main__":
    main()
