"""The reply policy: what an app does with a customer's message and with its own reply.

Used by every app the same way::

    from appkit.safety import load_policy, record

    policy = load_policy("support", settings)           # once per app process
    d = policy.check(message, direction="input")         # allow | flag | escalate (| block)
    if d.action == "escalate": ...hand over to a human...
    guarded = policy.guard_stream(engine.stream(messages))  # checked sentence by sentence
    for piece in guarded: show(piece)                    # a toxic sentence is never shown
    record(store, d, app="support", direction="input", conversation_id=c, message_id=m)
    record(store, guarded.decision, app="support", direction="output", conversation_id=c, message_id=r)

Actions, from mild to severe: ``allow``; ``flag`` (deliver, record for review); ``mask``
(offending words replaced by ``*``, delivered only if the masked text is clean); ``block`` (a safe
reply from ``prompts/<app>/blocked.j2`` or ``prompts/safety/blocked.j2`` is delivered instead);
``escalate`` (hand the conversation to a human; ``Decision.text`` is the original text).
The most severe action any rule triggers wins. Rules are per label and per direction; the
defaults suit a support bot: a customer's insult or curse is flagged, a threat or hate is
escalated; the bot's own output is masked for profanity and blocked for anything else toxic.
Override them in appkit.toml, for every app or for one::

    [safety.policy.input]
    insult = { threshold = 0.7, action = "flag" }
    [safety.apps.support.policy.output]
    obscene = "block"        # shorthand: the action, default threshold
    toxicity = 0.3           # shorthand: the threshold, default action

Labels the active model does not predict (a model trained on Davidson's data knows only
``toxicity`` and ``identity_attack``) are scored by the lexicon, so threats and profanity are
still told apart; which backend scored is always in ``Decision.backend``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from appkit.errors import ConfigError
from appkit.safety.settings import ACTIONS, RuleTable, RuleValue, SafetySettings

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.safety.backends import ToxicityClassifier
    from appkit.safety.lexicon import Lexicon

DIRECTIONS = ("input", "output")
_SEVERITY = {a: i for i, a in enumerate(ACTIONS)}
# A sentence ends at . ! ? or an ellipsis (closing quotes/brackets included) followed by space,
# or at a newline. A run without one is checked once it reaches MAX_CHUNK characters.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"')\]]*\s+|\n+")
MAX_CHUNK = 240


@dataclass(frozen=True)
class Rule:
    """``label`` at or above ``threshold`` triggers ``action``."""

    label: str
    threshold: float
    action: str


DEFAULT_RULES: dict[str, tuple[Rule, ...]] = {
    "input": (
        Rule("threat", 0.5, "escalate"), Rule("identity_attack", 0.5, "escalate"),
        Rule("severe_toxicity", 0.5, "escalate"), Rule("insult", 0.5, "flag"), Rule("obscene", 0.5, "flag"),
        Rule("sexual_explicit", 0.5, "flag"), Rule("toxicity", 0.5, "flag"),
    ),
    # The bot speaks for the company: a lower bar than for customers.
    "output": (
        Rule("threat", 0.4, "block"), Rule("identity_attack", 0.4, "block"), Rule("severe_toxicity", 0.4, "block"),
        Rule("insult", 0.4, "block"), Rule("sexual_explicit", 0.4, "block"), Rule("obscene", 0.4, "mask"),
        Rule("toxicity", 0.4, "mask"),
    ),
}
# What a "mask" becomes when there is nothing to mask, or the masked text is still toxic.
MASK_FALLBACK = {"input": "flag", "output": "block"}


@dataclass
class Decision:
    """What the policy decided about one text; ``text`` is what to deliver."""

    action: str
    scores: dict[str, float]
    backend: str
    reason: str
    text: str
    direction: str = "input"
    labels: tuple[str, ...] = ()  # the labels whose rules fired
    elapsed_ms: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether ``text`` differs from what was checked (masked or replaced)."""
        return self.action in ("mask", "block")

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, stored with messages and moderation events (no text)."""
        return {"action": self.action, "direction": self.direction, "backend": self.backend,
                "scores": {k: round(float(v), 4) for k, v in self.scores.items()}, "labels": list(self.labels),
                "reason": self.reason, "elapsed_ms": round(self.elapsed_ms, 2)}


class Policy:
    """Thresholds and actions per label and direction for one app, over one classifier."""

    def __init__(self, app: str, classifier: ToxicityClassifier, *, rules: dict[str, Sequence[Rule]] | None = None,
                 lexicon: Lexicon | None = None, backend_reason: str = "", settings: Settings | None = None,
                 mask_labels: Sequence[str] = ("obscene",)) -> None:
        from appkit.safety.lexicon import Lexicon

        self.app = app
        self.classifier = classifier
        self.rules = {d: tuple((rules or DEFAULT_RULES).get(d, DEFAULT_RULES[d])) for d in DIRECTIONS}
        self.lexicon = lexicon or Lexicon.builtin()
        self.backend_reason = backend_reason
        self.settings = settings
        self.mask_labels = tuple(mask_labels)

    @property
    def backend(self) -> str:
        return self.classifier.name

    @property
    def backend_name(self) -> str:
        """Same as ``backend`` (the name status bars show)."""
        return self.classifier.name

    def score(self, text: str) -> dict[str, float]:
        """The classifier's scores, with labels it lacks filled in by the lexicon."""
        scores = dict(self.classifier.score([text])[0]) if text.strip() else dict.fromkeys(self.classifier.labels, 0.0)
        if self.classifier.name.startswith("lexicon"):
            return scores
        for label, value in self.lexicon.scores(text).items():
            scores.setdefault(label, value)
        return scores

    def decide(self, scores: dict[str, float], direction: str) -> tuple[str, list[tuple[Rule, float]]]:
        """The most severe action the rules of ``direction`` trigger, and the rules that fired."""
        fired = [(r, scores[r.label]) for r in self.rules[_direction(direction)]
                 if r.label in scores and scores[r.label] >= r.threshold]
        action = max((r.action for r, _ in fired), key=_SEVERITY.__getitem__, default="allow")
        return action, fired

    def check(self, text: str, direction: str = "input") -> Decision:
        """Score ``text`` and decide; ``Decision.text`` is the text to deliver."""
        direction = _direction(direction)
        started = time.perf_counter()
        text = "" if text is None else str(text)
        scores = self.score(text)
        action, fired = self.decide(scores, direction)
        notes = [f"{r.label} {s:.2f} >= {r.threshold:.2f}: {r.action}" for r, s in fired]
        out = text
        if action == "mask":
            masked, n = self.lexicon.mask(text, self.mask_labels)
            after = self.decide(self.score(masked), direction)[0] if n else "mask"
            if n and _SEVERITY[after] <= _SEVERITY["flag"]:
                out = masked
                notes.append(f"{n} word(s) masked")
            else:
                action = MASK_FALLBACK[direction] if not n else max(after, MASK_FALLBACK[direction], key=_SEVERITY.__getitem__)
                notes.append("nothing to mask" if not n else "still toxic after masking")
        if action == "block":
            out = self.safe_reply(direction)
        return Decision(action, _rounded(scores), self.backend, "; ".join(notes) or "below every threshold", out,
                        direction, tuple(dict.fromkeys(r.label for r, _ in fired)),
                        (time.perf_counter() - started) * 1000)

    def safe_reply(self, direction: str = "output") -> str:
        """The text delivered instead of a blocked one (prompts/<app>/blocked.j2 or safety/blocked.j2)."""
        from appkit.prompts import prompts_for

        prompts = prompts_for(self.settings)
        name = f"{self.app}/blocked.j2"
        if not any((d / name).is_file() for d in prompts.search_path):
            name = "safety/blocked.j2"
        return prompts.render(name, direction=direction, app=self.app).text

    def guard_stream(self, pieces: Iterable[str], direction: str = "output") -> GuardedStream:
        """Wrap a stream of text pieces: sentences are checked before they are yielded."""
        return GuardedStream(self, pieces, _direction(direction))

    def describe(self) -> dict[str, Any]:
        """The policy in plain data (for `appkit safety status`)."""
        return {"app": self.app, "backend": self.backend, "reason": self.backend_reason,
                "rules": {d: [{"label": r.label, "threshold": r.threshold, "action": r.action} for r in rules]
                          for d, rules in self.rules.items()}}


class GuardedStream:
    """Yields what is safe to show, a sentence at a time; ``decision`` is set when it ends.

    A sentence is held back until it is complete (or MAX_CHUNK characters long) and checked:
    allowed or flagged -> shown; masked -> shown masked; blocked -> the source is cancelled, the
    safe reply is yielded instead and nothing more of the model's text is shown. Iterating the
    stream to the end makes ``decision.text`` exactly the text that was shown.
    """

    def __init__(self, policy: Policy, source: Iterable[str], direction: str = "output") -> None:
        self.policy = policy
        self.source = source
        self.direction = direction
        self.decision: Decision | None = None
        self.chunks: list[Decision] = []

    @property
    def stats(self) -> Any:
        """The wrapped stream's stats (an engine ReplyStream has them), else None."""
        return getattr(self.source, "stats", None)

    def __iter__(self) -> Iterator[str]:
        shown: list[str] = []
        buffer = ""
        for piece in self.source:
            buffer += piece
            while (cut := _sentence_cut(buffer)) is not None:
                chunk, buffer = buffer[:cut], buffer[cut:]
                out = self._check(chunk, shown)
                if out is None:
                    yield from self._block(shown)
                    return
                yield out
        if buffer:
            out = self._check(buffer, shown)
            if out is None:
                yield from self._block(shown)
                return
            yield out
        self.decision = self._final("".join(shown))

    def _check(self, chunk: str, shown: list[str]) -> str | None:
        """The chunk to show (maybe masked), or None when it must be blocked."""
        if not chunk.strip():
            shown.append(chunk)
            return chunk
        d = self.policy.check(chunk, self.direction)
        self.chunks.append(d)
        if d.action in ("block", "escalate"):
            return None
        shown.append(d.text)
        return d.text

    def _block(self, shown: list[str]) -> Iterator[str]:
        for stop in ("cancel", "close"):  # stop generating: the rest would be thrown away
            if callable(getattr(self.source, stop, None)):
                getattr(self.source, stop)()
                break
        prefix = "".join(shown)
        reply = self.policy.safe_reply(self.direction)
        sep = " " if prefix and not prefix[-1].isspace() else ""
        self.decision = replace(self._final(prefix + sep + reply), action="block")
        yield sep + reply

    def _final(self, text: str) -> Decision:
        """One decision for the whole reply: the worst action, the highest score per label."""
        scores: dict[str, float] = {}
        for d in self.chunks:
            for k, v in d.scores.items():
                scores[k] = max(scores.get(k, 0.0), v)
        worst = max((d.action for d in self.chunks), key=_SEVERITY.__getitem__, default="allow")
        reasons = [f"sentence {i + 1}: {d.reason}" for i, d in enumerate(self.chunks) if d.action != "allow"]
        labels = tuple(dict.fromkeys(label for d in self.chunks for label in d.labels))
        return Decision(worst, scores or dict.fromkeys(self.policy.classifier.labels, 0.0), self.policy.backend,
                        "; ".join(reasons) or "below every threshold", text, self.direction, labels,
                        sum(d.elapsed_ms for d in self.chunks))


def _sentence_cut(buffer: str) -> int | None:
    m = _SENTENCE_END.search(buffer)
    if m is not None:
        return m.end()
    if len(buffer) >= MAX_CHUNK:
        space = buffer.rfind(" ", 0, MAX_CHUNK)
        return space + 1 if space > MAX_CHUNK // 2 else MAX_CHUNK
    return None


def _direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction {direction!r}: expected 'input' or 'output'.")
    return direction


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in scores.items()}


# --- configuration -----------------------------------------------------------------------------


def available_labels(classifier: ToxicityClassifier | None = None) -> tuple[str, ...]:
    """Labels some backend scores: detoxify's official ones, the lexicon's, and ``classifier``'s own."""
    from appkit.safety.detox import OFFICIAL_LABELS
    from appkit.safety.lexicon import LABELS

    return tuple(dict.fromkeys([*OFFICIAL_LABELS, *LABELS, *(classifier.labels if classifier is not None else ())]))


def policy_rules(app: str, cfg: SafetySettings, labels: Sequence[str] | None = None,
                 calibrated: dict[str, float] | None = None) -> dict[str, tuple[Rule, ...]]:
    """DEFAULT_RULES, with ``calibrated`` thresholds (thresholds.py), overridden by [safety.policy.*]
    then [safety.apps.<app>.policy.*].

    ``labels``: the labels a rule may name (``available_labels``); a rule for any other label
    would never fire, so it is an error rather than silence (a typo such as ``insults``).
    ``calibrated``: label -> threshold for both directions (a label without a rule gets a flag rule).

    Raises:
        ConfigError: a rule for a label no backend produces (the shape of the rules, their actions
            and thresholds were checked when settings loaded).
    """
    rules = {d: {r.label: r for r in DEFAULT_RULES[d]} for d in DIRECTIONS}
    for label, threshold in (calibrated or {}).items():
        for d in DIRECTIONS:
            rules[d][label] = replace(rules[d].get(label, Rule(label, threshold, "flag")), threshold=threshold)
    for where, table in (("[safety.policy]", cfg.policy), (f"[safety.apps.{app}.policy]", cfg.app_policy(app))):
        for direction in DIRECTIONS:
            for label, value in getattr(table, direction).items():
                if labels is not None and label not in labels:
                    raise ConfigError(f"appkit.toml {where}.{direction}: no toxicity backend produces the label "
                                      f"{label!r}, so this rule would never fire; labels available: "
                                      f"{', '.join(labels)}.")
                rules[direction][label] = _rule(label, value, rules[direction].get(label))
    return {d: tuple(r for r in rules[d].values() if r.action != "off") for d in DIRECTIONS}


def _rule(label: str, value: RuleValue, default: Rule | None) -> Rule:
    """``value`` (a threshold, an action or both) over ``default`` (else: flag at 0.5)."""
    threshold, action = (default.threshold, default.action) if default else (0.5, "flag")
    if isinstance(value, RuleTable):
        threshold = threshold if value.threshold is None else value.threshold
        action = action if value.action is None else value.action
    elif isinstance(value, float):
        threshold = value
    else:
        action = value
    return Rule(label, threshold, action)


def load_policy(app: str, settings: Settings | None = None, *, backend: str | None = None) -> Policy:
    """The policy for ``app``: the active backend (see backends.py) and the configured rules."""
    from appkit.config import load_settings
    from appkit.safety.backends import choose_backend, safety_config
    from appkit.safety.lexicon import Lexicon
    from appkit.safety.thresholds import calibrated_thresholds

    settings = settings or load_settings()
    cfg = safety_config(settings)
    choice = choose_backend(settings, backend)
    lexicon = getattr(choice.classifier, "lexicon", None) or Lexicon.builtin()
    mask_labels = cfg.mask_labels
    calibrated = calibrated_thresholds(settings, choice.name)
    rules = policy_rules(app, cfg, available_labels(choice.classifier), calibrated)
    return Policy(app, choice.classifier, rules=rules, lexicon=lexicon,
                  backend_reason=choice.reason, settings=settings, mask_labels=tuple(mask_labels))


def record(store: Any, decision: Decision, *, app: str, direction: str | None = None,
           conversation_id: int | None = None, message_id: int | None = None) -> Any:
    """Store ``decision`` as a moderation event (``store.record_moderation``); returns the record."""
    return store.record_moderation(app, direction or decision.direction, decision.backend[:64], decision.action,
                                   dict(decision.scores), message_id=message_id, conversation_id=conversation_id)


@dataclass
class ToxicityFilter:
    """``is_toxic(text)`` for training-data curation: the highest label score >= ``threshold``."""

    classifier: ToxicityClassifier
    threshold: float = 0.5
    checked: int = 0
    flagged: int = 0
    _seen: dict[str, bool] = field(default_factory=dict, repr=False)

    @property
    def backend(self) -> str:
        return self.classifier.name

    def __call__(self, text: str) -> bool:
        if text not in self._seen:  # support histories repeat themselves: score each text once
            scores = self.classifier.score([text])[0] if text.strip() else {}
            self._seen[text] = max(scores.values(), default=0.0) >= self.threshold
            self.checked += 1
            self.flagged += self._seen[text]
        return self._seen[text]


def toxicity_filter(settings: Settings | None = None, threshold: float = 0.5) -> ToxicityFilter:
    """A callable for ``curate(is_toxic=...)`` / ``ChatTrainingOptions.is_toxic``, on the active backend."""
    from appkit.safety.backends import choose_backend

    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"toxicity threshold {threshold!r} must be between 0 and 1.")
    return ToxicityFilter(choose_backend(settings).classifier, threshold)
