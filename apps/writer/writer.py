"""The writer: drafts in a brand's voice from a brief, length-controlled, filtered, stored.

    writer = appkit.load_app("writer")
    draft = writer.write(title="Why we pair", format="blog", words=300)
    print(draft.text, draft.words, draft.document_id)
    for piece in writer.stream(title="Why we pair", words=300):
        print(piece, end="")

Every draft passes the safety policy (the brief as input, the draft sentence by sentence as
output; each decision is recorded) and is stored in the documents table with its brief, the
model and the brief template's version. A draft whose consumer stops early is not stored.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from appkit.config import Settings, load_settings
from appkit.errors import ConfigError, GenerationError, ModelError, SafetyError
from apps.writer.brief import BRIEF_TEMPLATE, Brief, count_words, make_brief
from apps.writer.length import DraftText, LengthPlan
from apps.writer.segments import part_prompt

if TYPE_CHECKING:
    from appkit.engine import Engine, GenerationParams
    from appkit.prompts import Prompts
    from appkit.store import Store
    from apps.writer.settings import WriterSettings

APP = "writer"
TRAIN_HINT = "run `appkit writer train --corpus posts/` (posts/ holds your own articles, Markdown or text)"
MAX_VARIANTS = 8
DEFAULT_TOKENS_PER_WORD = 1.5


@dataclass
class Draft:
    """A finished draft: ``text`` is the Markdown (title heading + body), ``words`` the body's length."""

    text: str
    words: int
    brief: dict[str, Any]
    document_id: int | None = None
    model_name: str = ""
    template_name: str = BRIEF_TEMPLATE
    template_version: str = ""
    safety: str = "allow"  # the output decision: allow | flag | mask | block
    finish: str = ""  # why it ended: target | end_of_text | limit | cancelled
    parts: int = 0  # model calls (a long draft is written a context-sized part at a time)
    tokens: int = 0
    seed: int | None = None
    moderation: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


class Writer:
    """A loaded writer model, its brief template, safety policy and document store."""

    def __init__(self, engine: Engine, *, model_name: str, settings: Settings, prompts: Prompts,
                 tokens_per_word: float = DEFAULT_TOKENS_PER_WORD, policy: Any = None,
                 params: GenerationParams | None = None) -> None:
        from appkit.engine import GenerationParams

        self.engine = engine
        self.model_name = model_name
        self.settings = settings
        self.prompts = prompts
        self.tokens_per_word = tokens_per_word
        self.policy = policy
        self.params = params or GenerationParams(temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.15)
        self._store: Store | None = None

    @classmethod
    def open(cls, *, model: str | None = None, settings: Settings | None = None, prompts_dir: str | None = None,
             **options: Any) -> Writer:
        """Load the active writer model (or ``model``: a registered name or a directory)."""
        from appkit.engine import Engine, GenerationParams
        from appkit.model.io import read_metadata
        from appkit.models import resolve_model_path
        from appkit.prompts import prompts_for

        settings = settings or load_settings()
        name, path = resolve_model_path(APP, model, settings, train_hint=TRAIN_HINT)
        meta = read_metadata(path)
        if "writer" not in meta:
            kind = f"a {meta['app']} model" if meta.get("app") else "not a writer model"
            raise ModelError(f"model {name!r} is {kind}: the writer needs a model trained on briefs; {TRAIN_HINT}.")
        engine = Engine.load(path, device=settings.resolve_device())
        engine.name = name
        config: WriterSettings = settings.app(APP)
        params = GenerationParams(temperature=config.temperature, top_p=config.top_p, top_k=config.top_k,
                                  repetition_penalty=config.repetition_penalty)
        return cls(engine, model_name=name, settings=settings, prompts=prompts_for(settings, prompts_dir),
                   tokens_per_word=float(meta["writer"].get("tokens_per_word", DEFAULT_TOKENS_PER_WORD)),
                   policy=options["policy"] if "policy" in options else _load_policy(settings), params=params)

    @property
    def store(self) -> Store:
        if self._store is None:
            from appkit.store import open_store

            self._store = open_store(self.settings)
        return self._store

    # -- writing ---------------------------------------------------------------------------

    def write(self, title: str, format: str | None = None, tone: str | None = None, words: int | None = None, *,
              variants: int = 1, tags: Sequence[str] = (), seed: int | None = None,
              params: GenerationParams | None = None, store: bool = True) -> Draft | list[Draft]:
        """Write a draft (or ``variants`` different drafts, generated together) and store each.

        Raises:
            ConfigError: a bad brief (empty title, unknown format, words outside 20-2000) or variants.
            SafetyError: the safety policy blocked the brief.
        """
        if isinstance(variants, bool) or not isinstance(variants, int) or not 1 <= variants <= MAX_VARIANTS:
            raise ConfigError(f"--variants must be between 1 and {MAX_VARIANTS}, got {variants!r}.")
        params = params or self.params
        if variants > 1 and params.greedy:
            raise ConfigError("--variants needs sampling: greedy decoding (temperature 0) writes the same draft each time.")
        brief = make_brief(title, format, tone, words, tags)
        moderation = self._check_brief(brief)
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        if store:
            self.store  # opened once here, not by each variant's thread
        streams = [DraftStream(self, brief, params, rng.randrange(2**31), store=store, moderation=moderation)
                   for _ in range(variants)]
        if variants == 1:
            return streams[0].run()
        # Submitted together, the engine decodes the variants as one batch.
        with ThreadPoolExecutor(max_workers=variants) as pool:
            return list(pool.map(DraftStream.run, streams))

    def stream(self, title: str, format: str | None = None, tone: str | None = None, words: int | None = None, *,
               tags: Sequence[str] = (), seed: int | None = None, params: GenerationParams | None = None,
               store: bool = True) -> DraftStream:
        """Start a draft; iterate the result for Markdown pieces, then read its ``.draft``.

        The brief is validated and checked by the safety policy before anything is generated.
        """
        brief = make_brief(title, format, tone, words, tags)
        moderation = self._check_brief(brief)
        return DraftStream(self, brief, params or self.params, seed, store=store, moderation=moderation)

    def draft_stream(self, brief: Brief, *, seed: int | None = None, params: GenerationParams | None = None,
                     store: bool = False) -> DraftStream:
        """A draft of an already validated ``brief``, without the input check (evaluations)."""
        return DraftStream(self, brief, params or self.params, seed, store=store)

    def _check_brief(self, brief: Brief) -> dict[str, Any]:
        """Run the input policy on the brief; refuse it when the policy blocks or escalates."""
        if self.policy is None:
            return {}
        text = " ".join(x for x in (brief.title, brief.tone or "", ", ".join(brief.tags)) if x)
        decision = self.policy.check(text, direction="input")
        _record(self, decision)
        if decision.action in ("block", "escalate"):
            raise SafetyError(f"the safety policy refused this brief ({decision.reason}); nothing was written. "
                              "Rephrase the title or the tone.")
        return {"input": decision.as_dict()}

    # -- the rest ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Model, size, device and safety backend (for status bars)."""
        info = self.engine.describe()
        info["safety"] = getattr(self.policy, "backend_name", None) or "off"
        return info

    def close(self) -> None:
        """Stop the engine and release the database."""
        self.engine.close()
        if self._store is not None:
            self._store.close()


class DraftStream:
    """One draft being written: iterate for Markdown pieces; ``draft`` is set when it completes."""

    def __init__(self, writer: Writer, brief: Brief, params: GenerationParams, seed: int | None, *,
                 store: bool = True, moderation: dict[str, Any] | None = None) -> None:
        self.writer = writer
        self.brief = brief
        self.params = params
        self.seed = seed
        self.store = store
        self.moderation = dict(moderation or {})
        self.draft: Draft | None = None
        self.cancelled = False
        self._engine_stream: Any = None
        self._parts = 0
        self._tokens = 0
        self._finish = ""
        self._rendered = writer.prompts.render(BRIEF_TEMPLATE, title=brief.title, format=brief.format,
                                               tone=brief.tone, words=brief.words, tags=list(brief.tags),
                                               written=0, tail="")

    def cancel(self) -> None:
        """Stop writing; a cancelled draft is not stored."""
        self.cancelled = True
        if self._engine_stream is not None:
            self._engine_stream.cancel()

    def run(self) -> Draft:
        """Write the whole draft and return it."""
        for _ in self:
            pass
        assert self.draft is not None
        return self.draft

    def __iter__(self) -> Iterator[str]:
        writer, brief = self.writer, self.brief
        heading = f"# {brief.title}\n\n"
        yield heading
        body = self._body()
        guarded = writer.policy.guard_stream(body) if writer.policy is not None else body
        shown: list[str] = []
        held = ""  # trailing whitespace waits for more text: the pieces join to exactly ``draft.text``
        try:
            for piece in guarded:
                shown.append(piece)
                piece = held + piece
                text = piece.rstrip()
                held = piece[len(text):]
                if text:
                    yield text
        finally:
            body.close()  # stopped early: closing the generator cancels the model's stream
        if self.cancelled:  # cancel(): a stopped draft is not stored
            return
        decision = getattr(guarded, "decision", None)
        if decision is not None and decision.action == "block":
            self._finish = "blocked"
        text = (decision.text if decision is not None else "".join(shown)).strip()
        if decision is not None:
            self.moderation["output"] = decision.as_dict()
            if self.store:
                _record(writer, decision)
        rendered = self._rendered
        draft = Draft(
            text=heading + text, words=count_words(text), brief=brief.as_dict(), model_name=writer.model_name,
            template_version=rendered.version, safety=decision.action if decision is not None else "off",
            finish=self._finish, parts=self._parts, tokens=self._tokens, seed=self.seed, moderation=self.moderation,
        )
        if self.store:
            result = {"words": draft.words, "finish": draft.finish, "parts": draft.parts, "seed": draft.seed,
                      "safety": draft.safety, "moderation": self.moderation}
            record = writer.store.save_document(
                APP, brief.title, draft.text, brief={**draft.brief, "result": result}, model_name=writer.model_name,
                template_name=rendered.name, template_version=rendered.version)
            draft.document_id = record.id
        self.draft = draft

    def _body(self) -> Iterator[str]:
        """The draft's body, a part at a time, ended by the length plan."""
        writer, brief, engine = self.writer, self.brief, self.writer.engine
        plan = LengthPlan(brief.words)
        text = DraftText(plan)
        tpw = writer.tokens_per_word
        max_parts = 3 + math.ceil(plan.high * tpw * 2 / engine.context_length)
        try:
            while not text.done and self._parts < max_parts and not self.cancelled:
                messages = part_prompt(engine.tokenizer, writer.prompts, brief, text.text, engine.context_length)
                if messages is None:
                    raise GenerationError("the brief leaves almost none of the model's context to write in: "
                                          "shorten the title, tone or tags.")
                room = engine.context_length - len(engine.check_fits(messages))
                # Tokens for "not before 80%"; the most a part may take is generous: DraftText ends
                # the draft by words, the token cap only guards against a part that never ends.
                need = max(0, plan.low - text.words)
                most = min(room, math.ceil((plan.high - text.words) * tpw * 1.5) + 16)
                least = min(most, math.ceil(need * tpw))
                seed = None if self.seed is None else self.seed + self._parts
                stream = self._engine_stream = engine.stream(
                    messages, replace(self.params, max_new_tokens=most, min_new_tokens=least, seed=seed))
                self._parts += 1
                text.start_part()
                for piece in stream:
                    out = text.feed(piece)
                    if out:
                        yield out
                    if text.done or self.cancelled:
                        stream.cancel()
                        break
                self._tokens += stream.stats.completion_tokens
                if not text.done and not self.cancelled:
                    out = text.end_part(stream.stats.finish_reason)
                    if out:
                        yield out
            self._finish = _finish_reason(text, plan, self.cancelled)
            text.finish()
        finally:
            # Finished, stopped by the reader, or blocked by the policy: the model stops either way.
            if self._engine_stream is not None:
                self._engine_stream.cancel()


def _finish_reason(text: DraftText, plan: LengthPlan, cancelled: bool) -> str:
    if cancelled:
        return "cancelled"
    if text.words >= plan.target:
        return "target"
    return "end_of_text" if text.done else "limit"


def _record(writer: Writer, decision: Any) -> None:
    """Every safety decision becomes a moderation event of the writer app."""
    from appkit.safety import record

    record(writer.store, decision, app=APP)


def _load_policy(settings: Settings) -> Any:
    from appkit.safety import load_policy

    return load_policy(APP, settings)
