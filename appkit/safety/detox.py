"""Models served through ``detoxify``: its official checkpoints, or one appkit trained itself.

Facts about detoxify 0.5.4 this module relies on (read from its source, checked by tests):

- ``Detoxify(model_type)`` fetches ``MODEL_URLS[model_type]`` with
  ``torch.hub.load_state_dict_from_url`` (cached in ``$TORCH_HOME/hub/checkpoints``) and then the
  base model's config and tokenizer from the Hugging Face hub (``bert-base-uncased`` ...). With no
  network either step raises (URLError, OSError); we check both caches first and never let that
  reach a user as a traceback.
- ``Detoxify(checkpoint=PATH, huggingface_config_path=DIR)`` ``torch.load``s a dict with
  ``config.arch.args`` = {model_type, model_name, tokenizer_name, num_classes},
  ``config.dataset.args.classes`` and ``state_dict``. ``model_name``/``tokenizer_name`` are
  looked up as attributes of ``transformers`` (concrete classes, not Auto*). ``model_type`` is
  *always* passed to ``config_class.from_pretrained``, so offline it must be a local directory
  holding config.json; a ``model.`` prefix on the state-dict keys would load random weights
  without an error. ``predict([])`` raises and ``predict([one])`` returns floats: wrapped here.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from appkit.errors import SafetyError

# detoxify 0.5.4's MODEL_URLS, by file name (tests check them against the installed package), and
# the Hugging Face model each one's config and tokenizer come from.
OFFICIAL: dict[str, tuple[str, str]] = {
    "original": ("toxic_original-c1212f89.ckpt", "bert-base-uncased"),
    "unbiased": ("toxic_debiased-c7548aa0.ckpt", "roberta-base"),
    "multilingual": ("multilingual_debiased-0b549669.ckpt", "xlm-roberta-base"),
    "original-small": ("original-albert-0e1d6498.ckpt", "albert-base-v2"),
    "unbiased-small": ("unbiased-albert-c8519128.ckpt", "albert-base-v2"),
}
# The labels detoxify's official models predict (all of them together; ``original`` lacks sexual_explicit).
OFFICIAL_LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack", "sexual_explicit")
CHECKPOINT_FILE = "detoxify.ckpt"
HF_DIR = "hf"
# A text longer than this many characters per model position is scored in windows (max per
# label), so a slur at the end of a long message is not truncated away.
CHARS_PER_POSITION = 3
MAX_WINDOWS = 32


class DetoxifyClassifier:
    """A ``detoxify.Detoxify`` model as a ToxicityClassifier: batched, robust to odd input."""

    def __init__(self, model: Any, name: str, *, batch_size: int = 32) -> None:
        self.model = model
        self.name = name
        self.labels: tuple[str, ...] = tuple(model.class_names)
        self.batch_size = batch_size
        positions = int(getattr(model.model.config, "max_position_embeddings", 512))
        limit = int(getattr(model.tokenizer, "model_max_length", positions) or positions)
        self.max_tokens = max(8, min(positions, limit))

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores in [0, 1] for every label, one dict per text; ``[]`` for ``[]``."""
        if isinstance(texts, str):
            texts = [texts]
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return []
        window = self.max_tokens * CHARS_PER_POSITION
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for piece in _windows(text, window):
                pieces.append(piece)
                owner.append(i)
        out: list[dict[str, float]] = [dict.fromkeys(self.labels, 0.0) for _ in texts]
        # Sort by length so each batch pads little: ~2x faster on mixed lengths (measured 1k tweets).
        order = sorted((k for k, p in enumerate(pieces) if p.strip()), key=lambda k: len(pieces[k]))
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            result = self.model.predict([pieces[k] for k in idx])
            for label in self.labels:
                values = result[label]
                if not isinstance(values, list):  # detoxify returns a float for a batch of one
                    values = [values]
                for k, v in zip(idx, values):
                    i = owner[k]
                    out[i][label] = max(out[i][label], round(float(v), 6))
        return out


def _windows(text: str, size: int) -> list[str]:
    """``text`` in overlapping windows of about ``size`` characters cut at spaces (one if short).

    Past MAX_WINDOWS windows the middle is skipped: the last window is always the text's end.
    """
    if len(text) <= size:
        return [text]
    out: list[str] = []
    start = 0
    while start < len(text):
        if len(out) == MAX_WINDOWS - 1:
            out.append(text[-size:])
            break
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            end = space if space > 0 else end
        out.append(text[start:end])
        if end >= len(text):
            break
        start = max(end - size // 8, start + 1)  # overlap: a phrase cut in two is seen whole once
    return out


# --- official models ---------------------------------------------------------------------------


def torch_hub_dir() -> Path:
    """torch.hub's directory, resolved as torch does (without importing torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, resolved as huggingface_hub does."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def official_cached(model_type: str) -> tuple[bool, str]:
    """Whether detoxify's ``model_type`` loads from local caches alone, and why (not)."""
    if model_type not in OFFICIAL:
        return False, f"unknown detoxify model {model_type!r} (one of {', '.join(OFFICIAL)})"
    filename, base = OFFICIAL[model_type]
    ckpt = torch_hub_dir() / "checkpoints" / filename
    if not ckpt.is_file():
        return False, f"detoxify {model_type!r} weights are not cached ({ckpt} missing)"
    configs = list((hf_hub_cache() / f"models--{base.replace('/', '--')}" / "snapshots").glob("*/config.json"))
    if not configs:
        return False, f"weights cached, but the {base} config/tokenizer are not in {hf_hub_cache()}"
    return True, f"detoxify {model_type!r} weights cached at {ckpt}"


def offline_mode() -> bool:
    """Whether the environment forbids network access (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "APPKIT_OFFLINE"))


def can_reach(host: str = "github.com", port: int = 443, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` s (DNS included: a thread)."""
    import socket

    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)  # getaddrinfo ignores the socket timeout; never wait on it longer
    return bool(result and result[0])


def load_official(model_type: str = "original", *, download: bool = False, device: str = "cpu",
                  timeout: float = 30.0) -> DetoxifyClassifier:
    """detoxify's official ``model_type``: from the caches, or downloaded when ``download`` is allowed.

    Raises:
        SafetyError: not cached and downloading is not allowed, not possible or failed.
    """
    cached, why = official_cached(model_type)
    if model_type not in OFFICIAL:
        raise SafetyError(why)
    if not cached:
        if not download:
            raise SafetyError(f"{why}; downloads are off (set [safety] download = true, or run "
                              "`appkit safety download`)")
        if offline_mode():
            raise SafetyError(f"{why}; offline mode is on (HF_HUB_OFFLINE), so it cannot be downloaded")
        if not can_reach():
            raise SafetyError(f"{why}; github.com cannot be reached, so it cannot be downloaded")
    try:
        with _hub_offline(cached), _socket_timeout(None if cached else timeout), _quiet():
            from detoxify import Detoxify

            model = Detoxify(model_type, device=device)
    except Exception as e:  # URLError, OSError, HTTPError, a corrupt cache: all mean "not available"
        raise SafetyError(f"detoxify {model_type!r} could not be loaded: {type(e).__name__}: {e}".rstrip(": ")) from None
    return DetoxifyClassifier(model, f"detoxify:{model_type}")


@contextlib.contextmanager
def _hub_offline(on: bool) -> Iterator[None]:
    """Force huggingface_hub offline (it reads HF_HUB_OFFLINE once, at import)."""
    if not on:
        yield
        return
    import huggingface_hub.constants as hub

    before = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before


@contextlib.contextmanager
def _socket_timeout(seconds: float | None) -> Iterator[None]:
    """torch.hub downloads with urllib and no timeout: bound it while we fetch."""
    import socket

    if seconds is None:
        yield
        return
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers' 'Loading weights' bars and warnings are noise for a CLI user."""
    from appkit.model.io import quiet_transformers

    quiet_transformers()
    yield


# --- self-trained checkpoints ------------------------------------------------------------------


def is_trained_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a checkpoint written by ``appkit safety train``."""
    path = Path(path)
    return (path / CHECKPOINT_FILE).is_file() and (path / HF_DIR / "config.json").is_file()


def load_trained(path: str | Path, *, device: str = "cpu") -> DetoxifyClassifier:
    """A checkpoint written by ``appkit safety train``, loaded through detoxify fully offline.

    Raises:
        SafetyError: the directory is not such a checkpoint or cannot be loaded.
    """
    path = Path(path).expanduser()
    if path.is_file() and path.name == CHECKPOINT_FILE:
        path = path.parent
    if not is_trained_dir(path):
        raise SafetyError(f"{path}: not a toxicity checkpoint (expected {CHECKPOINT_FILE} and {HF_DIR}/config.json "
                          "there, as written by `appkit safety train`).")
    ckpt = path / CHECKPOINT_FILE
    hf_dir = (path / HF_DIR).resolve()
    try:
        _relocate(ckpt, hf_dir)
        with _hub_offline(True), _quiet():
            from detoxify import Detoxify

            model = Detoxify(checkpoint=str(ckpt), device=device, huggingface_config_path=str(hf_dir))
    except SafetyError:
        raise
    except Exception as e:
        raise SafetyError(f"{ckpt}: cannot be loaded through detoxify ({type(e).__name__}: {e}).") from None
    return DetoxifyClassifier(model, f"trained:{path.name}")


def _relocate(ckpt: Path, hf_dir: Path) -> None:
    """Check the checkpoint holds only tensors and plain data; point its ``model_type`` at ``hf_dir``.

    detoxify itself unpickles with ``weights_only=False`` (any object, so any code); reading the
    file here first with ``weights_only=True`` refuses one that holds anything else, before
    detoxify sees it. Where checkpoints may come from is limited too (backends.py).
    """
    import pickle

    import torch

    try:
        loaded = torch.load(ckpt, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line), "")
        raise SafetyError(f"{ckpt}: holds objects other than tensors and plain data, so it is not loaded (unpickling "
                          f"it could run code). {found}".rstrip()) from None
    try:
        args = loaded["config"]["arch"]["args"]
    except (KeyError, TypeError):
        raise SafetyError(f"{ckpt}: not in detoxify's checkpoint format (no config.arch.args).") from None
    if Path(str(args.get("model_type", ""))) == hf_dir:
        return
    args["model_type"] = str(hf_dir)
    tmp = ckpt.with_name(f".{ckpt.name}.{os.getpid()}.tmp")
    try:
        torch.save(loaded, tmp)
        os.replace(tmp, ckpt)
    except OSError as e:  # read-only copy: detoxify would look for the old path and fail
        tmp.unlink(missing_ok=True)
        raise SafetyError(f"{ckpt}: was moved from {args.get('model_type')} and cannot be updated ({e.strerror}); "
                          "copy the directory somewhere writable.") from None
