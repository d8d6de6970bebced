"""Helpers for the data tests: write small history files into tmp_path."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Rows = list[dict[str, Any]]


def write_rows(path: Path, rows: Rows) -> Path:
    """Write ``rows`` (dicts with the same keys) in the format named by the extension."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    else:
        raise ValueError(suffix)
    return path


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, Rows], Path]:
    """``write("name.csv", rows)`` -> the path of a new file in tmp_path."""
    return lambda name, rows: write_rows(tmp_path / name, rows)
