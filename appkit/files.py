"""Files written whole or not at all: a temporary file beside the target, renamed over it on success.

Readers (and a crash at any moment) see the old file or the new one, never half of one. Every
writer in appkit that replaces a user-visible file (models' metadata, checkpoints, exports,
analysis outputs, drafts) goes through ``atomic_file``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(path: Path, mode: str = "w", *, newline: str | None = None) -> Iterator[IO[Any]]:
    """An open file that becomes ``path`` when the block ends without an error (``mode``: "w" or "wb")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so os.replace is a rename within one file system.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of one."""
    with atomic_file(path) as f:
        f.write(text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
