"""One reply of the chat API, whatever answers it: a raw model, the support bot or the writer.

Each kind is started in a worker thread (``start``: tokenizing, the safety check of the input),
so a request that cannot be answered fails before any byte is sent, then its ``pieces`` are
iterated in a thread too. After the pieces: ``finish_reason`` (OpenAI's stop / length /
content_filter), token counts and what the safety policy decided.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from appkit.serve.errors import ApiError

if TYPE_CHECKING:
    from appkit.engine import GenerationParams, ReplyStats
    from appkit.serve.runtime import Runtime, Served

Messages = list[dict[str, str]]
FINISH = {"end_of_turn": "stop", "stop": "stop", "length": "length", "cancelled": "stop", "error": "stop"}


class Generation:
    """A reply in progress; subclasses fill ``pieces`` and the figures."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.finish_reason = "stop"
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.stats: ReplyStats | None = None
        self.moderation: dict[str, Any] | None = None

    def start(self) -> None:
        """Everything that can refuse the request (runs before the response starts)."""

    def pieces(self) -> Iterator[str]:
        raise NotImplementedError

    def apieces(self, runtime: Runtime) -> AsyncIterator[str]:
        """``pieces`` on the event loop (iterated in a thread; closing it early cancels)."""
        from appkit.serve.streaming import pumped

        return pumped(runtime, self.pieces, self.cancel, name="appkit-chat")

    def cancel(self) -> None:
        """Stop generating (the client went away)."""

    def _count(self, text: str) -> int:
        engine = self.served.engine
        return len(engine.tokenizer.encode(text, add_special_tokens=False)) if engine is not None and text else 0


class ModelGeneration(Generation):
    """A registered model, served raw: the messages as given, no app prompt or policy."""

    def __init__(self, served: Served, messages: Messages, params: GenerationParams | None) -> None:
        super().__init__(served)
        self.messages, self.params = messages, params
        self._stream: Any = None

    def start(self) -> None:
        engine = self.served.engine
        assert engine is not None
        self._stream = engine.stream(self.messages, self.params)
        self.stats = self._stream.stats  # filled in as the reply is generated

    def pieces(self) -> Iterator[str]:
        yield from self._stream
        self._finished()

    async def apieces(self, runtime: Runtime) -> AsyncIterator[str]:
        """Read straight from the engine on the event loop: no thread hop per token."""
        from appkit.serve.streaming import engine_pieces

        async for piece in engine_pieces(self._stream):
            yield piece
        self._finished()

    def _finished(self) -> None:
        stats = self._stream.stats
        self.prompt_tokens, self.completion_tokens = stats.prompt_tokens, stats.completion_tokens
        self.finish_reason = FINISH.get(stats.finish_reason, "stop")

    def cancel(self) -> None:
        if self._stream is not None:
            self._stream.cancel()


class SupportGeneration(Generation):
    """The support app, stateless: its prompt, grounding, handoff rules and safety policy; nothing stored.

    SupportBot.reply is not a stream and cannot be cancelled, so the reply arrives as one piece.
    """

    def __init__(self, served: Served, messages: Messages, params: GenerationParams | None) -> None:
        super().__init__(served)
        turns = [m for m in messages if m["role"] != "system"]
        if not turns or turns[-1]["role"] != "user":
            raise ApiError(400, "the last message must be the customer's (role 'user').", param="messages",
                           code="invalid_request")
        self.history, self.message, self.params = turns[:-1], turns[-1]["content"], params

    def pieces(self) -> Iterator[str]:
        bot = self.served.target
        reply = bot.reply(self.message, self.history, params=self.params)
        self.stats, self.moderation = reply.stats, reply.moderation or None
        output = (reply.moderation or {}).get("output") or {}
        if output.get("action") in ("block", "escalate") or reply.reason == "safety":
            self.finish_reason = "content_filter"
        elif reply.stats is not None and reply.stats.finish_reason == "length":
            self.finish_reason = "length"
        messages, _ = bot.prompt([*self.history, {"role": "user", "content": self.message}])
        self.prompt_tokens = reply.stats.prompt_tokens if reply.stats else len(bot.engine.prompt_ids(messages))
        self.completion_tokens = self._count(reply.text)
        self.escalated, self.reason = reply.escalated, reply.reason
        yield reply.text


class WriterGeneration(Generation):
    """The writer app: the last user message is the draft's title; the brief's other fields take defaults."""

    def __init__(self, served: Served, messages: Messages, params: GenerationParams | None) -> None:
        super().__init__(served)
        users = [m["content"] for m in messages if m["role"] == "user"]
        if not users or not users[-1].strip():
            raise ApiError(400, "the writer needs a user message: the title of the draft.", param="messages",
                           code="invalid_request")
        self.title, self.params = users[-1].strip(), params
        self._draft: Any = None

    def start(self) -> None:
        self._draft = self.served.target.stream(title=self.title, params=self.params, store=False)

    def pieces(self) -> Iterator[str]:
        yield from self._draft
        draft = self._draft.draft
        if draft is None:  # cancelled
            return
        self.moderation = draft.moderation or None
        self.finish_reason = "content_filter" if draft.safety == "block" else (
            "length" if draft.finish == "limit" else "stop")
        self.prompt_tokens, self.completion_tokens = self._count(self.title), draft.tokens

    def cancel(self) -> None:
        if self._draft is not None:
            self._draft.cancel()


def generation_for(served: Served, messages: Messages, params: GenerationParams | None) -> Generation:
    """The Generation that answers ``messages`` with ``served``."""
    kinds = {"model": ModelGeneration, "support": SupportGeneration, "writer": WriterGeneration}
    return kinds[served.kind](served, messages, params)
