"""A damaged model folder is a ModelError naming the folder, never a library traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appkit.errors import ModelError
from appkit.model.io import load_model


def test_a_cut_weights_file_is_a_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy or download cut short
    with pytest.raises(ModelError) as raised:
        load_model(broken)
    assert str(raised.value).startswith(f"{broken}: the model cannot be loaded")
    load_model(tiny_model_dir)  # the intact one still loads
