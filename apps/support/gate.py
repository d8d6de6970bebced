"""The retrain gate: the candidate and the active model on the same held-out exchanges and the same audit.

Quality is measured in the reply mode the bot serves (``[support] reply_mode``) with no safety
policy in the way (the audit measures safety): on the history's validation conversations, reply
intent accuracy (a TF-IDF + logistic-regression judge trained on the training replies and
their intents, as `appkit support eval` does) when the history names intents, else ROUGE-L; on
the new held-out conversations a person answered, ROUGE-L against the person's answer and
the share answered rather than handed over (replies the active model wrote and a customer rated
good are learned from, but are no fair reference: the active model would say them again).
Validation perplexity is shown, not gated (a model that learned new answers may find the old
ones a little less likely and still answer them as well).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.config import Settings
    from apps.support.evaluate import Exchange, IntentClassifier
    from apps.support.retrain import RetrainData, RetrainOptions

APP = "support"


@dataclass
class Gate:
    """One comparison between the candidate and the active model."""

    name: str
    active: float | None
    candidate: float | None
    higher_is_better: bool = True
    tolerance: float = 0.0
    limit: float | None = None  # audit gates: the audit's own limit

    @property
    def passed(self) -> bool:
        if self.candidate is None:
            return self.active is None  # measured for neither: nothing to compare (said in the table)
        if self.active is None:
            return self.limit is not None and self.candidate <= self.limit
        if self.limit is not None:  # lower is better: within the limit, or no worse than now
            return self.candidate <= max(self.limit, self.active + self.tolerance)
        if self.higher_is_better:
            return self.candidate >= self.active - self.tolerance
        return self.candidate <= self.active + self.tolerance


@dataclass
class RetrainResult:
    active: str
    candidate: str
    data: dict[str, int]
    scores: dict[str, dict[str, dict[str, float | None]]]  # model -> set -> metric -> value
    gates: list[Gate]
    promoted: bool = False
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def as_dict(self) -> dict[str, Any]:
        return {"active": self.active, "candidate": self.candidate, "data": self.data, "scores": self.scores,
                "gates": [{**asdict(g), "passed": g.passed} for g in self.gates], "passed": self.passed,
                "promoted": self.promoted, "dry_run": self.dry_run, "notes": self.notes}


def compare(settings: Settings, active: str, candidate: str, data: RetrainData, options: RetrainOptions,
            log: Callable[[str], None] = print) -> RetrainResult:
    """Score both models on the held-out sets, audit both, and decide each gate."""
    from apps.support.evaluate import held_out_exchanges

    sets = {"history": held_out_exchanges(data.base_val)[: options.limit],
            "new": held_out_exchanges(data.new_val, by_person=True)[: options.limit]}
    judge = _judge(data, sets["history"])
    scores: dict[str, dict[str, dict[str, float | None]]] = {}
    audits: dict[str, dict[str, tuple[float | None, float]]] = {}
    for name in (active, candidate):
        scores[name] = _scores(settings, name, sets, judge, log)
        audits[name] = _audit(settings, name, options, log)
    quality = "intent_accuracy" if judge is not None else "rouge_l"
    what = "reply intent accuracy" if judge is not None else "ROUGE-L"
    tol = options.tolerance
    gates = [
        Gate(f"held-out history: {what}", scores[active]["history"][quality], scores[candidate]["history"][quality],
             tolerance=tol),
        Gate("new conversations: ROUGE-L vs the person's answer", scores[active]["new"]["rouge_l"],
             scores[candidate]["new"]["rouge_l"], tolerance=tol),
        Gate("new conversations: answered, not handed over", scores[active]["new"]["answered"],
             scores[candidate]["new"]["answered"], tolerance=tol),
    ]
    for gate_name, (value, limit) in audits[candidate].items():
        gates.append(Gate(f"audit: {gate_name}", audits[active].get(gate_name, (None, limit))[0], value,
                          higher_is_better=False, limit=limit))
    notes = [] if options.crows else ["the audit's CrowS-Pairs gate was not measured (pass --crows FILE)"]
    return RetrainResult(active, candidate, data.counts, scores, gates, dry_run=options.dry_run, notes=notes)


def _judge(data: RetrainData, exchanges: Sequence[Exchange]) -> IntentClassifier | None:
    """The intent judge, when the history names an intent for every conversation that matters."""
    from apps.support.evaluate import IntentClassifier

    named = [c for c in data.train if c.meta.get("intent")]
    if not named or not exchanges or not all(e.intent for e in exchanges):
        return None
    replies = [next(t.text for t in reversed(c.turns) if t.role == "assistant") for c in named]
    return IntentClassifier(replies, [str(c.meta["intent"]) for c in named])


def _scores(settings: Settings, name: str, sets: dict[str, list[Exchange]], judge: IntentClassifier | None,
            log: Callable[[str], None]) -> dict[str, dict[str, float | None]]:
    from appkit.progress import Progress
    from apps.support.bot import SupportBot
    from apps.support.evaluate import answer_all, text_scores, validation_perplexity

    bot = SupportBot.open(model=name, settings=settings, policy=None)
    out: dict[str, dict[str, float | None]] = {}
    try:
        for set_name, exchanges in sets.items():
            if not exchanges:  # no person answered a held-out conversation: nothing to measure
                out[set_name] = {"n": 0, "intent_accuracy": None, "rouge_l": None, "answered": None}
                continue
            with Progress(f"{name} on {set_name} held-out", len(exchanges)) as bar:
                replies = answer_all(bot, exchanges, lambda _what, done, _total: bar.update(done), bot.reply_mode)
            texts = [r.text for r in replies]
            _bleu, rouge = text_scores(texts, [e.reference for e in exchanges])
            accuracy = None
            if judge is not None and all(e.intent for e in exchanges):
                accuracy = sum(p == e.intent for p, e in zip(judge.predict(texts), exchanges)) / len(exchanges)
            out[set_name] = {"n": len(exchanges), "intent_accuracy": accuracy, "rouge_l": rouge,
                             "answered": sum(not r.escalated for r in replies) / len(replies)}
        out["history"]["perplexity"] = validation_perplexity(bot, sets["history"])
    finally:
        bot.close()
    log(f"{name}: " + "; ".join(f"{s}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()
                                                       if isinstance(v, float)) for s, m in out.items()))
    return out


def _audit(settings: Settings, name: str, options: RetrainOptions,
           log: Callable[[str], None]) -> dict[str, tuple[float | None, float]]:
    """The safety audit of model ``name``: gate -> (value, limit)."""
    from appkit.safety.audit import parse_gates, run_audit

    gates = parse_gates([], settings)
    if options.crows is None:
        gates.pop("max_crows_bias", None)
    result = run_audit(APP, settings=settings, model=name, gates=gates, crows=options.crows,
                       max_messages=options.audit_messages, allow_skipped=True,
                       out_dir=settings.home / "audits" / f"retrain-{name}", log=log)
    return {g.name: (g.value, g.limit) for g in result.gates}
