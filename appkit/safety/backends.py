"""Which toxicity backend is active, and why: official detoxify, self-trained, or the lexicon.

``auto`` takes the best that works here, in this order:
1. detoxify's official model (``[safety] official_model``, default ``original``) if its weights
   and base config are already cached (or ``download = true`` and the network answers);
2. the newest checkpoint from ``appkit safety train`` in APPKIT_HOME/safety (or ``checkpoint``);
3. the lexicon, which always works.
A named backend that cannot load falls back the same way, with the reason recorded, unless
``strict = true``: then running without a classifier is an error, for ``auto`` too. A fallback
to the lexicon is logged as a warning once per process, naming what to do about it.

A self-trained classifier may hold a checkpoint in detoxify's format (its ``--encoder`` member,
or a classifier trained before blends), which is a pickle (loading one can run code), so a
``checkpoint`` from settings is loaded only from inside APPKIT_HOME: an appkit.toml in the
current directory cannot point appkit at a file elsewhere. A checkpoint anywhere else is loaded
only when named on the command line (``appkit safety eval --checkpoint``, ``appkit audit
--compare``) or by APPKIT_SAFETY_CHECKPOINT. Settings, in appkit.toml::

    [safety]
    backend = "auto"            # auto | official | trained | lexicon (env APPKIT_SAFETY_BACKEND)
    official_model = "original" # original | unbiased | multilingual | original-small | unbiased-small
    download = false            # let `auto` fetch official weights (~400 MB) when online
    checkpoint = ""             # a trained checkpoint's name under APPKIT_HOME/safety (or a dir inside APPKIT_HOME)
    wordlist = ""               # extra terms for the lexicon, one a line (term[,label[,severity]])
    strict = false
    device = "cpu"

(every key, with its default, in settings.py)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from appkit.errors import ConfigError, SafetyError
from appkit.safety.settings import BACKENDS, SafetySettings

if TYPE_CHECKING:
    from appkit.config import Settings

_CACHE: dict[tuple[Any, ...], BackendChoice] = {}
_LOCK = threading.Lock()
_WARNED: set[str] = set()  # fallbacks already warned about in this process
BETTER = ("train a classifier on labelled data with `appkit safety train --data FILE`, or fetch detoxify's "
          "weights with `appkit safety download` (needs internet)")


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

    @property
    def degraded(self) -> bool:
        """Whether only the lexicon screens messages (no classifier)."""
        return is_lexicon(self.classifier.name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (for `appkit safety status --json` and logs)."""
        return {"backend": self.name, "requested": self.requested, "reason": self.reason, "degraded": self.degraded,
                "labels": list(self.classifier.labels), "tried": [{"backend": b, "why": w} for b, w in self.tried]}


def is_lexicon(backend: str) -> bool:
    """Whether a backend name (``Decision.backend``, ``Policy.backend``) is the lexicon's."""
    return backend.startswith("lexicon")


def safety_config(settings: Settings | None = None) -> SafetySettings:
    """The [safety] table with environment overrides applied (APPKIT_SAFETY_BACKEND/_CHECKPOINT).

    Raises:
        ConfigError: APPKIT_SAFETY_BACKEND names no backend.
    """
    from appkit.config import load_settings

    cfg = (settings or load_settings()).safety
    if os.environ.get("APPKIT_SAFETY_BACKEND"):
        backend = os.environ["APPKIT_SAFETY_BACKEND"].strip().lower()
        if backend not in BACKENDS:
            raise ConfigError(f"APPKIT_SAFETY_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}.")
        cfg = replace(cfg, backend=backend)  # type: ignore[arg-type]  # checked just above
    if os.environ.get("APPKIT_SAFETY_CHECKPOINT"):
        cfg = replace(cfg, checkpoint=os.environ["APPKIT_SAFETY_CHECKPOINT"])
    return cfg


def trained_root(settings: Settings) -> Path:
    """Where ``appkit safety train`` writes checkpoints: APPKIT_HOME/safety."""
    return settings.home / "safety"


def list_trained(settings: Settings) -> list[Path]:
    """Trained classifier directories, newest first."""
    root = trained_root(settings)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if not p.name.startswith(".") and is_trained(p)]
    return sorted(found, key=_mtime, reverse=True)


def is_trained(path: Path) -> bool:
    """Whether ``path`` holds a classifier from ``appkit safety train`` (this format, or detoxify-only of old)."""
    from appkit.safety.blend import is_blend_dir
    from appkit.safety.detox import is_trained_dir

    return is_blend_dir(path) or is_trained_dir(path)


def load_trained_classifier(path: str | Path, *, device: str = "cpu") -> ToxicityClassifier:
    """The classifier in ``path``: a blend (blend.py), or a detoxify checkpoint written before blends.

    Raises:
        SafetyError: not such a directory, or it cannot be loaded.
    """
    from appkit.safety.blend import is_blend_dir, load_blend
    from appkit.safety.detox import load_trained

    path = Path(path).expanduser()
    return load_blend(path, device=device) if is_blend_dir(path) else load_trained(path, device=device)


def _checkpoint_path(settings: Settings, value: str, *, trusted: bool) -> Path:
    """The checkpoint ``value`` names: a name under APPKIT_HOME/safety, or a path.

    Raises:
        SafetyError: an untrusted ``value`` (from an appkit.toml) resolves outside APPKIT_HOME.
    """
    path = Path(value).expanduser()
    if not path.is_absolute() and ((trained_root(settings) / value).exists() or not path.exists()):
        path = trained_root(settings) / value
    if not trusted and not path.resolve().is_relative_to(settings.home.expanduser().resolve()):
        raise SafetyError(
            f"[safety] checkpoint = {value!r} is outside APPKIT_HOME ({settings.home}); checkpoints in detoxify's "
            "format can run code when loaded, so settings may only name one inside APPKIT_HOME (copy it to "
            f"{trained_root(settings)}/NAME), or name it on the command line (appkit safety eval --checkpoint PATH) "
            "or in APPKIT_SAFETY_CHECKPOINT.")
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
    requested = (backend or cfg.backend).strip().lower()
    if requested not in BACKENDS:
        raise ConfigError(f"backend {requested!r} is not one of {', '.join(BACKENDS)}.")
    trained = list_trained(settings)
    from_env = bool(os.environ.get("APPKIT_SAFETY_CHECKPOINT"))
    checkpoint = _checkpoint_path(settings, cfg.checkpoint, trusted=from_env) if cfg.checkpoint else None
    stamp = (checkpoint or (trained[0] if trained else None))

    def key() -> tuple[Any, ...]:  # a retrained checkpoint (new mtime) is loaded afresh
        return (requested, str(settings.home), cfg.official_model, cfg.download, str(stamp), _mtime(stamp),
                cfg.wordlist, cfg.device,
                os.environ.get("TORCH_HOME"), os.environ.get("HF_HOME"), os.environ.get("HF_HUB_CACHE"))

    with _LOCK:
        before = key()
        if not reload and before in _CACHE:
            return _CACHE[before]
        choice = _choose(requested, cfg, checkpoint, trained)
        _CACHE[before] = _CACHE[key()] = choice  # loading may rewrite a moved checkpoint (new mtime)
        log = logging.getLogger("appkit.safety")
        log.info("toxicity backend: %s (%s)", choice.name, choice.reason)
        if choice.degraded and requested != "lexicon" and "fallback" not in _WARNED:
            _WARNED.add("fallback")
            log.warning("appkit safety: no toxicity classifier could be loaded, so messages are screened by the "
                        "%s backend alone (a word list: it misses abuse without listed words). To do better, %s. "
                        "Why: %s", choice.name, BETTER, "; ".join(f"{b}: {w}" for b, w in choice.tried))
        return choice


def _mtime(path: Path | None) -> float:
    """When the classifier in ``path`` was written (its metadata, or an old checkpoint's weights)."""
    from appkit.safety.blend import METADATA_FILE
    from appkit.safety.detox import CHECKPOINT_FILE

    for name in (METADATA_FILE, CHECKPOINT_FILE):
        try:
            return (path / name).stat().st_mtime if path else 0.0
        except OSError:
            continue
    return 0.0


def _choose(requested: str, cfg: SafetySettings, checkpoint: Path | None, trained: list[Path]) -> BackendChoice:
    from appkit.safety.detox import load_official

    device, strict, model_type = cfg.device, cfg.strict, cfg.official_model
    tried: list[tuple[str, str]] = []
    order = {"auto": ("official", "trained"), "official": ("official",), "trained": ("trained",), "lexicon": ()}[requested]
    for candidate in order:
        try:
            if candidate == "official":
                # `auto` downloads only when allowed; asking for `official` by name allows it.
                download = cfg.download or requested == "official"
                clf = load_official(model_type, download=download, device=device)
                return BackendChoice(clf, requested, f"detoxify official {model_type!r} weights are available", tried)
            path = checkpoint or (trained[0] if trained else None)
            if path is None:
                raise SafetyError("no self-trained checkpoint yet (train one: `appkit safety train --data FILE`)")
            clf = load_trained_classifier(path, device=device)
            which = "configured" if checkpoint else "newest"
            return BackendChoice(clf, requested, f"{which} self-trained checkpoint {path}", tried)
        except SafetyError as e:
            if strict and requested != "auto":
                raise
            tried.append((candidate, str(e)))
    if strict and requested == "auto":
        raise SafetyError("[safety] strict = true and no toxicity classifier could be loaded ("
                          + "; ".join(f"{b}: {w}" for b, w in tried) + f"). To run, {BETTER}; or set strict = false "
                          "to screen with the lexicon alone.")
    lexicon = _lexicon(cfg)
    if requested == "lexicon":
        reason = "the lexicon was asked for"
    else:
        reason = "fallback: " + "; ".join(f"{b}: {w}" for b, w in tried)
    return BackendChoice(lexicon, requested, reason, tried)


def _lexicon(cfg: SafetySettings) -> ToxicityClassifier:
    from appkit.safety.lexicon import Lexicon, LexiconClassifier

    wordlist = cfg.wordlist.strip()
    return LexiconClassifier(Lexicon.from_file(wordlist) if wordlist else Lexicon.builtin())


def get_classifier(settings: Settings | None = None, backend: str | None = None) -> ToxicityClassifier:
    """The active toxicity classifier (see ``choose_backend``)."""
    return choose_backend(settings, backend).classifier


def clear_cache() -> None:
    """Forget loaded classifiers (tests; after training a new checkpoint in-process it is automatic)."""
    with _LOCK:
        _CACHE.clear()
        _WARNED.clear()
