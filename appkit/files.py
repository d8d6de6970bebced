"""Files written whole or not at all: a temporary file beside the target, renamed over it on success.

Readers (and a crash at any moment) see the old file or the new one, never half of one. Every
writer in appkit that replaces a user-visible file (models' metadata, checkpoints, exports,
analysis outputs, drafts) goes through ``atomic_file``. Files and folders that hold customers'
conversations are private to their owner (``private=True``, ``make_private_dir``): a shared
machine's other users must not read them, whatever the umask.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@functools.cache
def _umask() -> int:
    # Reading the umask means setting it for an instant: cached, so that happens once a process.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def creation_mode(*, directory: bool = False) -> int:
    """The permissions a plain ``open()`` (or ``mkdir``) would give a new file here, after the umask.

    Temporary files and folders are created private (0600 / 0700); renamed into place as they
    are, a draft or an export would be unreadable to the rest of the team.
    """
    return (0o777 if directory else 0o666) & ~_umask()


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents readable by the owner only (0700); existing ones stay as they are."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:  # another process made it meanwhile
            pass


@contextmanager
def atomic_file(path: Path, mode: str = "w", *, newline: str | None = None,
                private: bool = False) -> Iterator[IO[Any]]:
    """An open file that becomes ``path`` when the block ends without an error (``mode``: "w" or "wb").

    ``private``: the file is made readable by its owner only (0600), also when it replaces one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so os.replace is a rename within one file system.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # A private file is the owner's alone; a replaced file keeps its permissions; a new one gets the usual ones.
        if private:
            os.chmod(tmp, PRIVATE_FILE)
        else:
            os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else creation_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of one."""
    with atomic_file(path, private=private) as f:
        f.write(text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
