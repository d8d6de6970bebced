"""OpenAI-compatible routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/moderations``.

Any OpenAI client works unchanged (base_url ``http://127.0.0.1:8000/v1``). Streaming is
server-sent events ending with ``data: [DONE]``; ``stream_options.include_usage`` adds a last
chunk with the token counts. ``n`` replies are generated together (one batch).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from appkit.serve.access import Caller, current_caller
from appkit.serve.errors import stream_error
from appkit.serve.generation import Generation, generation_for
from appkit.serve.schemas import ChatRequest, ModerationRequest
from appkit.serve.streaming import EventStream, collect, sse

if TYPE_CHECKING:
    from appkit.serve.metrics import Metrics
    from appkit.serve.runtime import Runtime, Served

router = APIRouter(tags=["OpenAI-compatible"])

# OpenAI's moderation categories, and the toxicity labels (detoxify's, the lexicon's) behind each.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "harassment": ("toxicity", "severe_toxicity", "insult", "obscene"),
    "harassment/threatening": ("threat",),
    "hate": ("identity_attack",),
    "hate/threatening": (),
    "illicit": (),
    "illicit/violent": (),
    "self-harm": (),
    "self-harm/intent": (),
    "self-harm/instructions": (),
    "sexual": ("sexual_explicit",),
    "sexual/minors": (),
    "violence": ("threat",),
    "violence/graphic": (),
}


@router.get("/v1/models", summary="The models and apps this server answers with")
def list_models(request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    data = [_model_card(s) for s in runtime.served.values() if caller.key is None or caller.key.allows(s.id)]
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id}", summary="One served model")
def get_model(model_id: str, request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    served = request.app.state.runtime.get(model_id)
    caller.check_scope(served.id)
    return _model_card(served)


def _model_card(s: Served) -> dict[str, Any]:
    return {"id": s.id, "object": "model", "created": s.created, "owned_by": "appkit",
            "appkit": {"kind": s.kind, "model": s.model_name}}


@router.post("/v1/chat/completions", summary="A chat reply (OpenAI's API; stream with SSE)")
async def chat_completions(body: ChatRequest, request: Request, caller: Caller = Depends(current_caller)) -> Any:
    runtime: Runtime = request.app.state.runtime
    body.refuse_unsupported()
    served = runtime.get(body.model, kinds=("model", "support", "writer"))
    caller.check_scope(served.id)
    messages = body.chat(runtime.options.max_message_chars)
    gens = [generation_for(served, messages, body.params(i)) for i in range(body.n)]
    info = request.scope.setdefault("appkit", {})
    info["model"] = served.id
    if runtime.options.log_bodies:
        info["messages"] = messages
    served.admit(body.n)
    finish = _Finisher(served, gens, request.app.state.metrics, info)
    try:
        for g in gens:
            await run_in_threadpool(g.start)
    except BaseException:
        finish()
        raise
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    pieces = _merged(runtime, gens, finish)
    if body.stream:
        usage = body.stream_options is not None and body.stream_options.include_usage
        return EventStream(_chunks(pieces, gens, cid, created, served.id, usage), on_close=finish)
    try:
        texts = [""] * len(gens)
        for i, piece in await collect(request, pieces):
            texts[i] += piece or ""
    finally:
        finish()
    return {"id": cid, "object": "chat.completion", "created": created, "model": served.id,
            "system_fingerprint": None,
            "choices": [{"index": i, "message": {"role": "assistant", "content": texts[i]},
                         "finish_reason": g.finish_reason, "logprobs": None} for i, g in enumerate(gens)],
            "usage": _usage(gens)}


class _Finisher:
    """Runs once when a chat request ends, however it ends: cancels what still runs, frees the gate, counts."""

    def __init__(self, served: Served, gens: list[Generation], metrics: Metrics, info: dict[str, Any]) -> None:
        self.served, self.gens, self.metrics, self.info = served, gens, metrics, info
        self.started = time.perf_counter()
        self.first: float | None = None
        self.ended: set[int] = set()
        self._done = False

    def piece(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()
            self.info["ttft_ms"] = round((self.first - self.started) * 1000, 1)

    def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        for i, g in enumerate(self.gens):
            if i not in self.ended:
                g.cancel()
        self.served.gate.leave(len(self.gens), time.perf_counter() - self.started)
        for i, g in enumerate(self.gens):
            if g.stats is None and i not in self.ended:
                continue  # never started (refused), or an app reply stopped before it could report
            self.metrics.reply(self.served.id, g.stats, tokens=None if g.stats is not None else g.completion_tokens,
                               finish="cancelled" if i not in self.ended else g.finish_reason)
            self.metrics.moderation(self.served.kind, g.moderation)
            if getattr(g, "escalated", False):
                self.metrics.handoffs.labels(getattr(g, "reason", "") or "unknown").inc()
        self.info["completion_tokens"] = sum(g.completion_tokens for g in self.gens)


async def _merged(runtime: Runtime, gens: list[Generation], finish: _Finisher) -> AsyncIterator[tuple[int, str | None]]:
    """(choice, piece) as the choices produce them; (choice, None) when one ends."""
    if len(gens) == 1:  # the common case: no queue between the reply and the response
        async for piece in gens[0].apieces(runtime):
            finish.piece()
            yield 0, piece
        finish.ended.add(0)
        yield 0, None
        return
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    async def run(i: int, g: Generation) -> None:
        try:
            async for piece in g.apieces(runtime):
                await queue.put((i, piece))
            finish.ended.add(i)
            await queue.put((i, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            await queue.put((i, e))

    tasks = [asyncio.ensure_future(run(i, g)) for i, g in enumerate(gens)]
    try:
        left = len(gens)
        while left:
            i, item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                left -= 1
            else:
                finish.piece()
            yield i, item
    finally:
        for t in tasks:
            t.cancel()


async def _chunks(pieces: AsyncIterator[tuple[int, str | None]], gens: list[Generation], cid: str, created: int,
                  model: str, include_usage: bool) -> AsyncIterator[str]:
    def chunk(choices: list[dict[str, Any]]) -> str:
        out: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                               "system_fingerprint": None, "choices": choices}
        if include_usage:
            out["usage"] = None
        return sse(out)

    yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
                 for i in range(len(gens))])
    try:
        async for i, piece in pieces:
            if piece is None:
                yield chunk([{"index": i, "delta": {}, "finish_reason": gens[i].finish_reason, "logprobs": None}])
            elif piece:
                yield chunk([{"index": i, "delta": {"content": piece}, "finish_reason": None, "logprobs": None}])
    except Exception as e:  # the response has started: report in the stream, as OpenAI does
        yield sse(stream_error(e))
        return
    if include_usage:
        yield sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": None, "choices": [], "usage": _usage(gens)})
    yield sse("[DONE]")


def _usage(gens: list[Generation]) -> dict[str, int]:
    prompt = gens[0].prompt_tokens if gens else 0  # the same prompt for every choice
    completion = sum(g.completion_tokens for g in gens)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@router.post("/v1/moderations", summary="Classify texts with appkit's own safety backend (OpenAI's shape)")
def moderations(body: ModerationRequest, request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    texts = body.texts(runtime.options.max_message_chars)
    policy = runtime.moderation_policy()
    metrics: Metrics = request.app.state.metrics
    results = []
    for text in texts:
        decision = policy.check(text, direction="input")
        metrics.safety.labels("moderation", "input", decision.action).inc()
        results.append(moderation_result(decision))
    return {"id": f"modr-{uuid.uuid4().hex}", "model": f"appkit-{policy.backend}", "results": results}


def moderation_result(decision: Any) -> dict[str, Any]:
    """One OpenAI moderation result from a policy Decision; the backend's own labels under ``appkit``."""
    scores, fired = decision.scores, set(decision.labels)
    return {
        "flagged": decision.action != "allow",
        "categories": {c: bool(fired & set(labels)) for c, labels in CATEGORIES.items()},
        "category_scores": {c: max((float(scores.get(label, 0.0)) for label in labels), default=0.0)
                            for c, labels in CATEGORIES.items()},
        "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
        "appkit": {"action": decision.action, "backend": decision.backend, "scores": scores,
                   "labels": list(decision.labels), "reason": decision.reason},
    }

