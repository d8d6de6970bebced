"""How the support bot makes one reply, in one of three modes.

- ``grounded`` (the default): the best past reply for this conversation, chosen from the
  closest cases by retrieval evidence and our model's judgement (apps/support/grounding.py);
  when even the best one is unlikely to fit, the model writes its own reply instead.
- ``select``: the best past reply, never a generated one (a human takes over when none fits).
- ``generate``: the model's own reply, as it streams.

The model and retrieval see the conversation with personal data replaced, as in training
("order [ORDER_ID]"); the values the customer typed fill the reply's placeholders again
(apps/support/placeholders.py), so no reply shows a raw placeholder in any mode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appkit.data.pii import scrub_pii
from appkit.errors import ConfigError
from apps.support.grounding import Candidate, Grounder, Grounding
from apps.support.settings import REPLY_MODES
from apps.support.placeholders import Known, PlaceholderStream, customer_texts, fill_placeholders

if TYPE_CHECKING:
    from appkit.engine import Engine, GenerationParams, ReplyStats, ReplyStream
    from appkit.prompts import Prompts

Message = dict[str, str]
REPLY_TOKENS = 256  # room for 99% of Bitext's answers (tiny preset's tokenizer)


def check_mode(mode: str) -> str:
    """``mode`` if it is a reply mode, else a ConfigError naming the choices."""
    if mode not in REPLY_MODES:
        raise ConfigError(f"reply mode {mode!r} is not one of {', '.join(REPLY_MODES)}.")
    return mode


@dataclass
class Draft:
    """One reply on its way: iterate ``pieces`` for the text (placeholders already filled).

    ``grounding`` says how it was made; ``stream`` is the engine's stream when the model's
    reply is streamed as it is generated (generate mode); ``generated`` holds the stats of the
    model's own reply when grounded mode wrote one to weigh the past replies against. ``unsure``
    is set when nothing fits well enough to answer: the bot hands the conversation to a human.
    """

    mode: str
    grounding: Grounding
    pieces: Iterable[str]
    stream: ReplyStream | None = None
    generated: ReplyStats | None = None
    unsure: bool = False
    asked: list[str] = field(default_factory=list)

    @property
    def stats(self) -> ReplyStats | None:
        """Generation figures of the reply shown, when the model wrote it."""
        if self.stream is not None:
            return self.stream.stats
        return self.generated if self.grounding.chosen.source == "generated" else None


def reply_params(**given: Any) -> GenerationParams:
    """The support bot's generation settings where the caller sets none: greedy, no repetition
    penalty, up to ``REPLY_TOKENS`` tokens; ``given`` (temperature=..., seed=...) overrides them.

    A support answer should be the most likely one, not a varied one, and its wording repeats on
    purpose ("your order ... the order number"): sampling, and a penalty on tokens already
    written, move a small model off the answers it learned (dev/LOG.md: generate mode with a
    1.1 penalty against none).
    """
    from dataclasses import replace

    from appkit.engine import GREEDY

    return replace(GREEDY, **{"max_new_tokens": REPLY_TOKENS, **given})


def model_view(history: Sequence[Mapping[str, str]]) -> list[Message]:
    """The conversation as the model and retrieval see it: customers' personal data replaced."""
    return [{"role": m["role"], "content": scrub_pii(m["content"])[0] if m["role"] == "user" else m["content"]}
            for m in history]


def words(text: str) -> Iterator[str]:
    """A chosen reply streamed word by word (with the spacing after each word)."""
    yield from re.findall(r"\S+\s*|\s+", text)


class Replier:
    """Makes replies for one loaded support model."""

    def __init__(self, engine: Engine, prompts: Prompts, grounder: Grounder | None, *,
                 facts: Mapping[str, str] | None = None, company: str | None = None) -> None:
        self.engine = engine
        self.prompts = prompts
        self.grounder = grounder
        self.facts = dict(facts or {})
        self.company = company

    def draft(self, history: Sequence[Mapping[str, str]], prompt: list[Message], mode: str,
              params: GenerationParams | None = None) -> Draft:
        """Start the reply to ``history`` (raw, ending with the customer's turn).

        ``prompt`` is the model's input for it (system prompt and the scrubbed turns that fit);
        ``params`` None means the support bot's own (``reply_params``).
        """
        params = params if params is not None else reply_params()
        known = Known.gather(customer_texts(history), self.facts, self.company)
        if mode == "generate" or self.grounder is None:
            stream = self.engine.stream(prompt, params)
            filler = PlaceholderStream(stream, known, self.prompts)
            return Draft("generate", Grounding("generate", Candidate("", "generated")), filler, stream=stream,
                         asked=filler.asked)
        grounder = self.grounder
        view = model_view(history)  # the query, without the topic hints
        candidates = grounder.gather(view)
        threshold = grounder.weights[mode].fallback_below
        own = None
        if mode == "grounded" and (not candidates or "echo" in grounder.needs(mode, candidates)):
            # the model's own reply: evidence for the past ones (its opening), or the fallback (all of it)
            own = self.engine.reply(prompt, _evidence_params(params, whole=threshold > 0.0 or not candidates))
        ranked = self.rank(candidates, prompt, mode, own.text if own is not None else None)
        top = ranked[0].score if ranked else 0.0  # how sure the evidence is, whichever wording is shown
        best = _answerable(ranked, known, self.prompts,
                           lambda c, fits: grounder.same_kind(view, c, fits))
        if mode == "grounded" and own is not None and (best is None or top < threshold):
            chosen = Candidate(own.text, "generated", score=top)
        elif best is not None:
            chosen = best
        else:  # select, and nothing retrieved at all
            return Draft(mode, Grounding(mode, Candidate("", "none"), ranked), iter(()), unsure=True)
        filled = fill_placeholders(chosen.text, known, self.prompts)
        past = grounder.index.cases[chosen.case].customer if chosen.case is not None else ""
        return Draft(mode, Grounding(mode, chosen, ranked, past), words(filled.text),
                     generated=own.stats if own is not None else None, asked=filled.asked,
                     unsure=mode == "select" and top < threshold)

    def rank(self, candidates: list[Candidate], prompt: list[Message], mode: str,
             own_reply: str | None = None) -> list[Candidate]:
        """``candidates`` scored under ``mode``, best first (the model scores them if the mode weighs that)."""
        assert self.grounder is not None
        if not candidates:
            return []
        fits = None
        if "pmi" in self.grounder.needs(mode, candidates):
            fits = [s.mean for s in self.engine.score(prompt, [c.text for c in candidates])]
        return self.grounder.rank(candidates, mode, fits=fits, own_reply=own_reply)


def _answerable(ranked: list[Candidate], known: Known, prompts: Prompts,
                more: Callable[[Candidate, Callable[[str], bool]], Candidate | None] | None = None
                ) -> Candidate | None:
    """The best candidate, or where it needs an identifier the customer has not given (a past reply
    that acted on "order [ORDER_ID]"), the best of the same reply group that does not: that past
    reply answered a customer who had named the order, and the same kind of answer asking for it
    fits this one better than a confirmation followed by a question. Where no ranked candidate of
    the group will do, ``more(best, fits)`` looks further in the group (``Grounder.same_kind``)."""
    if not ranked:
        return None
    best = ranked[0]

    def fits(text: str) -> bool:
        return not fill_placeholders(text, known, prompts).asked

    if best.source != "case" or fits(best.text):
        return best
    for c in ranked[1:]:
        if c.source == "case" and c.group == best.group and fits(c.text):
            return c
    return (more(best, fits) if more is not None else None) or best


def _evidence_params(params: GenerationParams | None, *, whole: bool) -> GenerationParams:
    """The model's own reply in grounded mode is its most likely one (greedy), as when the
    weights were fitted; the caller's length limit still applies. Unless it may be shown
    (``whole``), only its opening is written: the echo compares no more (``ECHO_TOKENS``)."""
    from dataclasses import replace

    from appkit.engine import GREEDY
    from apps.support.grounding import ECHO_TOKENS  # read per call: a test sets a small one

    limit = params.max_new_tokens if params is not None else GREEDY.max_new_tokens
    return replace(GREEDY, max_new_tokens=limit if whole else min(limit, ECHO_TOKENS))


def describe_grounding(grounding: Grounding, stats: ReplyStats | None = None) -> dict[str, Any]:
    """What is stored with a reply about how it was made."""
    out = grounding.as_dict()
    if stats is not None and stats.mean_logprob is not None:
        out["generated_logprob"] = round(stats.mean_logprob, 4)
    return out
