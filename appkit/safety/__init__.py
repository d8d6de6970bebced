"""Safety: toxicity scores (detoxify official / self-trained / lexicon), the reply policy, the bias audit.

For an app::

    from appkit.safety import load_policy, record
    policy = load_policy("support", settings)
    decision = policy.check(message, direction="input")      # Decision(action, scores, backend, reason, text)
    guarded = policy.guard_stream(pieces)                     # yields safe text; guarded.decision at the end
    record(store, decision, app="support", direction="input", conversation_id=..., message_id=...)

For training-data curation: ``toxicity_filter(settings, threshold=0.5)`` is an ``is_toxic`` callable.
For scores alone: ``get_classifier(settings).score(["text", ...])`` -> ``[{label: score}, ...]``;
``choose_backend(settings)`` also says which backend is active and why;
``load_trained_classifier(path)`` loads one directory ``appkit safety train`` wrote.

Names are imported lazily (PEP 562): importing appkit.safety loads neither torch nor detoxify.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.safety.backends import (BackendChoice, ToxicityClassifier, choose_backend, get_classifier,
                                        load_trained_classifier)
    from appkit.safety.blend import BlendClassifier
    from appkit.safety.detox import DetoxifyClassifier, load_official, load_trained
    from appkit.safety.lexicon import Lexicon, LexiconClassifier
    from appkit.safety.policy import Decision, GuardedStream, Policy, Rule, load_policy, record, toxicity_filter
    from appkit.safety.data import read_labelled
    from appkit.safety.train import ClassifierOptions, train_classifier

_EXPORTS = {
    "ToxicityClassifier": "appkit.safety.backends",
    "BackendChoice": "appkit.safety.backends",
    "choose_backend": "appkit.safety.backends",
    "get_classifier": "appkit.safety.backends",
    "load_trained_classifier": "appkit.safety.backends",
    "BlendClassifier": "appkit.safety.blend",
    "DetoxifyClassifier": "appkit.safety.detox",
    "load_official": "appkit.safety.detox",
    "load_trained": "appkit.safety.detox",
    "Lexicon": "appkit.safety.lexicon",
    "LexiconClassifier": "appkit.safety.lexicon",
    "Decision": "appkit.safety.policy",
    "GuardedStream": "appkit.safety.policy",
    "Policy": "appkit.safety.policy",
    "Rule": "appkit.safety.policy",
    "load_policy": "appkit.safety.policy",
    "record": "appkit.safety.policy",
    "toxicity_filter": "appkit.safety.policy",
    "ClassifierOptions": "appkit.safety.train",
    "read_labelled": "appkit.safety.data",
    "train_classifier": "appkit.safety.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'appkit.safety' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
