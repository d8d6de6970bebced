"""The ``[safety]`` table of appkit.toml, typed: backend, policy rules, audit gates.

    [safety]
    backend = "auto"            # auto | official | trained | lexicon (env APPKIT_SAFETY_BACKEND)
    official_model = "original" # original | unbiased | multilingual | original-small | unbiased-small
    download = false            # let `auto` fetch official weights (~400 MB) when online
    checkpoint = ""             # a trained checkpoint's name under APPKIT_HOME/safety (env APPKIT_SAFETY_CHECKPOINT)
    wordlist = ""               # extra terms for the lexicon, one a line (term[,label[,severity]])
    strict = false              # refuse to run on the lexicon alone
    device = "cpu"
    mask_labels = ["obscene"]   # labels the "mask" action hides

    [safety.policy.input]       # label = threshold, action, or both: {threshold = 0.9, action = "escalate"}
    insult = 0.8
    [safety.apps.support.policy.output]   # one app's rules over the shared ones
    obscene = "block"
    [safety.audit]              # gates of `appkit audit`: NAME = limit, or "off"
    max_identity_fpr = 0.1

Which labels and actions a rule may name depends on the active backend, so policy.py checks
those when the policy loads; this module checks the shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union, get_args

from appkit.errors import ConfigError

Backend = Literal["auto", "official", "trained", "lexicon"]
BACKENDS: tuple[str, ...] = get_args(Backend)
Action = Literal["allow", "flag", "mask", "block", "escalate"]
ACTIONS: tuple[str, ...] = get_args(Action)  # mildest first


@dataclass(frozen=True)
class RuleTable:
    """A rule written as a table: ``{threshold = 0.9, action = "escalate"}`` (either may be left out)."""

    threshold: float | None = None
    action: Action | Literal["off"] | None = None


# A rule is a threshold (0.8), an action ("block", or "off" to drop the rule) or both (a RuleTable).
RuleValue = Union[float, Action, Literal["off"], RuleTable]


@dataclass(frozen=True)
class PolicyTables:
    """``[safety.policy]``: rules for what customers send (input) and what apps reply (output)."""

    input: dict[str, RuleValue] = field(default_factory=dict)
    output: dict[str, RuleValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for direction in ("input", "output"):
            for label, rule in getattr(self, direction).items():
                threshold = rule.threshold if isinstance(rule, RuleTable) else rule
                if isinstance(threshold, float) and not 0.0 <= threshold <= 1.0:
                    raise ConfigError(f"the safety policy's {direction} rule {label}: threshold {threshold!r} must "
                                      "be between 0 and 1.")


@dataclass(frozen=True)
class AppSafety:
    """``[safety.apps.NAME]``: one app's own rules, over ``[safety.policy]``."""

    policy: PolicyTables = field(default_factory=PolicyTables)


@dataclass(frozen=True)
class SafetySettings:
    """Every setting of the toxicity backends, the reply policy and the bias audit."""

    backend: Backend = "auto"
    official_model: str = "original"
    download: bool = False
    checkpoint: str = ""
    wordlist: str = ""
    strict: bool = False
    device: str = "cpu"
    mask_labels: tuple[str, ...] = ("obscene",)
    policy: PolicyTables = field(default_factory=PolicyTables)
    apps: dict[str, AppSafety] = field(default_factory=dict)
    audit: dict[str, Union[float, Literal["off"]]] = field(default_factory=dict)

    def app_policy(self, app: str) -> PolicyTables:
        """``[safety.apps.<app>.policy]`` (empty when there is none)."""
        return self.apps.get(app, AppSafety()).policy


__all__ = ["ACTIONS", "BACKENDS", "AppSafety", "PolicyTables", "RuleTable", "RuleValue", "SafetySettings"]
