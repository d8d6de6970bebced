"""Which toxicity backend is active, and why: official detoxify, self-trained, or the lexicon.

``auto`` takes the best that works here, in this order:
1. detoxify's official model (``[safety] official_model``, default ``original``) if its weights
   and base config are already cached (or ``download = true`` and the network answers);
2. the newest checkpoint from ``appkit safety train`` in APPKIT_HOME/safety (or ``checkpoint``);
3. the lexicon, which always works.
A named backend that cannot load falls back the same way, with the reason recorded, unless
``strict = true`` (then it is an error). Settings, in appkit.toml::

    [safety]
    backend = "auto"            # auto | official | trained | lexicon (env APPKIT_SAFETY_BACKEND)
    official_model = "original" # original | unbiased | multilingual | original-small | unbiased-small
    download = false            # let `auto` fetch official weights (~400 MB) when online
    checkpoint = ""             # a trained checkpoint dir or its name under APPKIT_HOME/safety
    wordlist = ""               # extra terms for the lexicon, one a line (term[,label[,severity]])
    strict = false
    device = "cpu"
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from appkit.errors import ConfigError, SafetyError

if TYPE_CHECKING:
    from appkit.config import Settings

BACKENDS = ("auto", "official", "trained", "lexicon")
_CACHE: dict[tuple[Any, ...], BackendChoice] = {}
_LOCK = threading.Lock()


@runtime_checkable
class ToxicityClassifier(Protocol):
    """What every backend provides: scores in [0, 1] per label, one dict per text."""

    name: str
    labels: tuple[str, ...]

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One dict per text (``[]`` for ``[]``); empty, emoji-only or foreign text never raises."""
        ...


@dataclass
class BackendChoice:
    """The active classifier, what was asked for, and why this one."""

    classifier: ToxicityClassifier
    requested: str
    reason: str
    tried: list[tuple[str, str]] = field(default_factory=list)  # (backend, why it was not used)

    @property
    def name(self) -> str:
        return self.classifier.name

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (for `appkit safety status --json` and logs)."""
        return {"backend": self.name, "requested": self.requested, "reason": self.reason,
                "labels": list(self.classifier.labels), "tried": [{"backend": b, "why": w} for b, w in self.tried]}


def safety_config(settings: Settings | None = None) -> dict[str, Any]:
    """The [safety] table with environment overrides applied (APPKIT_SAFETY_BACKEND/_CHECKPOINT)."""
    from appkit.config import load_settings

    settings = settings or load_settings()
    cfg = dict(settings.section("safety"))
    if os.environ.get("APPKIT_SAFETY_BACKEND"):
        cfg["backend"] = os.environ["APPKIT_SAFETY_BACKEND"]
    if os.environ.get("APPKIT_SAFETY_CHECKPOINT"):
        cfg["checkpoint"] = os.environ["APPKIT_SAFETY_CHECKPOINT"]
    backend = str(cfg.get("backend") or "auto").strip().lower()
    if backend not in BACKENDS:
        raise ConfigError(f"[safety] backend = {backend!r} (or APPKIT_SAFETY_BACKEND) is not one of "
                          f"{', '.join(BACKENDS)}.")
    cfg["backend"] = backend
    return cfg


def trained_root(settings: Settings) -> Path:
    """Where ``appkit safety train`` writes checkpoints: APPKIT_HOME/safety."""
    return settings.home / "safety"


def list_trained(settings: Settings) -> list[Path]:
    """Trained checkpoint directories, newest first."""
    from appkit.safety.detox import CHECKPOINT_FILE, is_trained_dir

    root = trained_root(settings)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if not p.name.startswith(".") and is_trained_dir(p)]
    return sorted(found, key=lambda p: (p / CHECKPOINT_FILE).stat().st_mtime, reverse=True)


def _checkpoint_path(settings: Settings, value: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists() and not path.is_absolute():
        path = trained_root(settings) / value
    return path


def choose_backend(settings: Settings | None = None, backend: str | None = None, *, reload: bool = False) -> BackendChoice:
    """Load the configured (or ``backend``) classifier, falling back as documented; cached per process.

    Raises:
        ConfigError: an unknown backend name or a bad word-list file.
        SafetyError: the backend cannot load and ``strict = true``.
    """
    from appkit.config import load_settings

    settings = settings or load_settings()
    cfg = safety_config(settings)
    requested = (backend or cfg["backend"]).strip().lower()
    if requested not in BACKENDS:
        raise ConfigError(f"backend {requested!r} is not one of {', '.join(BACKENDS)}.")
    trained = list_trained(settings)
    checkpoint = _checkpoint_path(settings, str(cfg["checkpoint"])) if cfg.get("checkpoint") else None
    stamp = (checkpoint or (trained[0] if trained else None))

    def key() -> tuple[Any, ...]:  # a retrained checkpoint (new mtime) is loaded afresh
        return (requested, str(settings.home), str(cfg.get("official_model", "original")), bool(cfg.get("download")),
                str(stamp), _mtime(stamp), str(cfg.get("wordlist", "")), str(cfg.get("device", "cpu")),
                os.environ.get("TORCH_HOME"), os.environ.get("HF_HOME"), os.environ.get("HF_HUB_CACHE"))

    with _LOCK:
        before = key()
        if not reload and before in _CACHE:
            return _CACHE[before]
        choice = _choose(requested, cfg, checkpoint, trained)
        _CACHE[before] = _CACHE[key()] = choice  # loading may rewrite a moved checkpoint (new mtime)
        logging.getLogger("appkit.safety").info("toxicity backend: %s (%s)", choice.name, choice.reason)
        return choice


def _mtime(path: Path | None) -> float:
    from appkit.safety.detox import CHECKPOINT_FILE

    try:
        return (path / CHECKPOINT_FILE).stat().st_mtime if path else 0.0
    except OSError:
        return 0.0


def _choose(requested: str, cfg: dict[str, Any], checkpoint: Path | None, trained: list[Path]) -> BackendChoice:
    from appkit.safety.detox import load_official, load_trained

    device = str(cfg.get("device") or "cpu")
    strict = bool(cfg.get("strict"))
    tried: list[tuple[str, str]] = []
    model_type = str(cfg.get("official_model") or "original")
    order = {"auto": ("official", "trained"), "official": ("official",), "trained": ("trained",), "lexicon": ()}[requested]
    for candidate in order:
        try:
            if candidate == "official":
                # `auto` downloads only when allowed; asking for `official` by name allows it.
                download = bool(cfg.get("download")) or requested == "official"
                clf = load_official(model_type, download=download, device=device)
                return BackendChoice(clf, requested, f"detoxify official {model_type!r} weights are available", tried)
            path = checkpoint or (trained[0] if trained else None)
            if path is None:
                raise SafetyError("no self-trained checkpoint yet (train one: `appkit safety train --data FILE`)")
            clf = load_trained(path, device=device)
            which = "configured" if checkpoint else "newest"
            return BackendChoice(clf, requested, f"{which} self-trained checkpoint {path}", tried)
        except SafetyError as e:
            if strict and requested != "auto":
                raise
            tried.append((candidate, str(e)))
    lexicon = _lexicon(cfg)
    if requested == "lexicon":
        reason = "the lexicon was asked for"
    else:
        reason = "fallback: " + "; ".join(f"{b}: {w}" for b, w in tried)
    return BackendChoice(lexicon, requested, reason, tried)


def _lexicon(cfg: dict[str, Any]) -> ToxicityClassifier:
    from appkit.safety.lexicon import Lexicon, LexiconClassifier

    wordlist = str(cfg.get("wordlist") or "").strip()
    return LexiconClassifier(Lexicon.from_file(wordlist) if wordlist else Lexicon.builtin())


def get_classifier(settings: Settings | None = None, backend: str | None = None) -> ToxicityClassifier:
    """The active toxicity classifier (see ``choose_backend``)."""
    return choose_backend(settings, backend).classifier


def clear_cache() -> None:
    """Forget loaded classifiers (tests; after training a new checkpoint in-process it is automatic)."""
    with _LOCK:
        _CACHE.clear()
