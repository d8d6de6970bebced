"""Save and load models as plain Hugging Face directories plus appkit's metadata.

A saved model loads with ``AutoModelForCausalLM.from_pretrained(dir)`` and ``AutoTokenizer``
alone; ``appkit.json`` beside the weights records what appkit knows about it (preset, data
fingerprint, metrics, curation report). A LoRA run also keeps its adapter in ``adapter/`` so
apps can share one base and switch adapters.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import ModelError
from appkit.files import creation_mode, write_json_atomic

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

METADATA_FILE = "appkit.json"


def quiet_transformers() -> None:
    """Silence transformers' own shard/weight progress bars: appkit shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """Build a directory in a staging area, then swap it in for ``out_dir`` in one rename.

    Readers see the old directory or the new one, never a half-written one; on any error the
    staging area is removed and ``out_dir`` is left as it was.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        yield staging
        _usual_permissions(staging)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _usual_permissions(folder: Path) -> None:
    """Give ``folder`` and all in it the permissions a plain mkdir / open would.

    mkdtemp makes the folder private (0700) and safetensors writes its weight files 0600: a
    model saved as they leave it could not be read by the team's service account.
    """
    for root, folders, files in os.walk(folder):
        for name in folders:
            os.chmod(os.path.join(root, name), creation_mode(directory=True))
        for name in files:
            os.chmod(os.path.join(root, name), creation_mode())
    os.chmod(folder, creation_mode(directory=True))


def save_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    metadata: dict[str, Any],
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save ``model`` + ``tokenizer`` + metadata to ``out_dir`` atomically (replacing it).

    A peft (LoRA) model is saved twice: its adapter alone in ``adapter/`` (to share a base),
    and merged into the base weights at the top, so plain transformers loads it.
    ``write_extra(folder)`` adds an app's own files to the folder before it replaces ``out_dir``.
    """
    quiet_transformers()
    out_dir = Path(out_dir)
    with staged_directory(out_dir) as staging:
        if hasattr(model, "merge_and_unload"):  # a peft model: adapter first, merging changes it
            with warnings.catch_warnings():
                # When appkit's chat tokens were added to the base's vocabulary, peft saves the
                # resized embeddings with the adapter (what we want) and says so in a UserWarning.
                warnings.filterwarnings("ignore", message=".*save_embedding_layers.*", category=UserWarning)
                model.save_pretrained(staging / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if write_extra is not None:
            write_extra(staging)
        write_json_atomic(staging / METADATA_FILE, metadata)
    return out_dir


def read_metadata(model_dir: str | Path) -> dict[str, Any]:
    """appkit's metadata for a saved model ({} for a foreign checkpoint)."""
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: unreadable model metadata ({e}).") from None


def load_model(
    model_dir: str | Path, *, device: str = "cpu", dtype: Any = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """Load a saved model for inference: (model in eval mode on ``device``, tokenizer, metadata)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir}: no model there (config.json missing). Train one first, e.g. "
                         "`appkit support train --history tickets.csv`.")
    from safetensors import SafetensorError

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=dtype or "auto")
    except (OSError, ValueError, SafetensorError) as e:  # SafetensorError: a cut or damaged weights file
        raise ModelError(f"{model_dir}: the model cannot be loaded ({e}).") from None
    model.to(device).eval()
    return model, tokenizer, read_metadata(model_dir)
