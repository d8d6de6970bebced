"""How the models blended with the encoder (blend.py) are stored in its model folder.

One safetensors file per member: its arrays, and what is needed to rebuild it (sizes,
vocabulary, how texts become features) as JSON in the file's header. Plain arrays and JSON,
not a pickle: loading a model folder never runs code from it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from appkit.errors import ModelError

SPEC_KEY = "appkit"  # the header entry holding the member's spec


def write_member_file(path: Path, tensors: Mapping[str, Any], spec: Mapping[str, Any], framework: str) -> None:
    """Save ``tensors`` (numpy arrays for framework "numpy", torch tensors for "pt") with ``spec``."""
    if framework == "numpy":
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    save_file(dict(tensors), str(path), metadata={SPEC_KEY: json.dumps(spec)})


def read_member_file(path: Path, framework: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec, tensors) of a file ``write_member_file`` wrote; use inside ``reading_member``."""
    from safetensors import safe_open

    with safe_open(str(path), framework=framework) as f:
        spec = json.loads((f.metadata() or {})[SPEC_KEY])
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    return spec, tensors


@contextlib.contextmanager
def reading_member(directory: Path, what: str) -> Iterator[None]:
    """Turn any failure to read or rebuild a member into a ModelError naming the folder and the member.

    A file that is missing, damaged, or does not fit the code (a wrong key, shape or size) all
    end the same way for the user: the model has to be trained again.
    """
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as e:
        raise ModelError(f"{directory}: the sentiment model's {what} file cannot be read ({_first_line(e)}); "
                         "train the model again.") from None


def _first_line(error: Exception) -> str:
    """A one-line reason: torch's state-dict errors run to many lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
