"""appkit's own routes: support conversations (stored, as in `appkit chat`), sentiment, drafts.

    POST /v1/conversations                                   start a support conversation
    GET  /v1/conversations/{id}                              it and its messages
    POST /v1/conversations/{id}/messages                     a customer message; the reply streams (SSE)
    POST /v1/conversations/{id}/messages/{mid}/feedback      rate a reply +1 / -1
    POST /v1/conversations/{id}/handoff                      hand the conversation to a human
    POST /v1/conversations/{id}/agent-reply                  a human agent's answer (retraining learns from it)
    POST /v1/sentiment                                       texts -> labels and probabilities
    POST /v1/write                                           a brief -> a draft (stored)

A key sees only the conversations it created: any other id answers 404, as a missing one does;
the exception is a key for the agents' own tool (scope ``agent``: ``appkit keys create --name
helpdesk --app support --app agent``), which may answer any support conversation. Only such a key
(or an open local server) may post an agent's answer: a customer-facing key cannot put words in
an agent's mouth, and so into the next model's training data.
A streamed reply is a series of ``data: {"type": "delta", "content": ...}`` events and one
``{"type": "done", ...}`` with the stored reply, whether the bot handed over, and why.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from appkit.errors import NotFoundError, StorageError
from appkit.serve.access import Caller, current_caller
from appkit.serve.errors import ApiError, stream_error
from appkit.serve.schemas import (
    AgentReply,
    CustomerMessage,
    Handoff,
    NewConversation,
    Rating,
    SentimentRequest,
    WriteRequest,
)
from appkit.serve.streaming import EventStream, collect, pumped, sse
from appkit.store.records import AGENT_SCOPE

if TYPE_CHECKING:
    from appkit.serve.metrics import Metrics
    from appkit.serve.runtime import Runtime, Served

router = APIRouter(tags=["apps"])


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _support(request: Request, caller: Caller) -> Served:
    served = _runtime(request).find("support")
    caller.check_scope(served.id)
    return served


def _owned(runtime: Runtime, caller: Caller, conversation_id: int, *, any_owner: bool = False) -> Any:
    """The support conversation, if this caller may see it; 404 otherwise (whether or not it exists)."""
    missing = ApiError(404, f"conversation {conversation_id} does not exist.", code="not_found")
    try:
        conv = runtime.store.get_conversation(conversation_id)
    except NotFoundError:
        raise missing from None
    if conv.app != "support" or not (any_owner or caller.can_see(runtime.store.conversation_key(conversation_id))):
        raise missing
    return conv


def _conversation(conv: Any, messages: list[Any] | None = None) -> dict[str, Any]:
    out = {"id": conv.id, "object": "conversation", "app": conv.app, "status": conv.status, "title": conv.title,
           "user": conv.external_user_id, "created_at": conv.created_at.isoformat(),
           "updated_at": conv.updated_at.isoformat()}
    if messages is not None:
        out["messages"] = [_message(m) for m in messages]
    return out


def _message(m: Any) -> dict[str, Any]:
    return {"id": m.id, "seq": m.seq, "role": m.role, "content": m.content, "status": m.status,
            "created_at": m.created_at.isoformat(), "model": m.model_name,
            "safety": (m.moderation or {}).get("action"), "sentiment": (m.sentiment or {}).get("label"),
            "author": m.author}


@router.post("/v1/conversations", status_code=201, summary="Start a support conversation")
def create_conversation(body: NewConversation, request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    served = _support(request, caller)
    conv = served.target.start(user=body.user, title=body.title)
    if caller.key is not None:
        _runtime(request).store.set_conversation_key(conv.id, caller.key.id)
    return _conversation(conv, [])


@router.get("/v1/conversations/{conversation_id}", summary="A support conversation and its messages")
def read_conversation(conversation_id: int, request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    served = _support(request, caller)
    conv = _owned(_runtime(request), caller, conversation_id)
    return _conversation(conv, served.target.store.messages(conv.id))


@router.post("/v1/conversations/{conversation_id}/messages", summary="A customer message; the bot's reply streams")
async def post_message(conversation_id: int, body: CustomerMessage, request: Request,
                       caller: Caller = Depends(current_caller)) -> Any:
    runtime = _runtime(request)
    served = _support(request, caller)
    await run_in_threadpool(_owned, runtime, caller, conversation_id)
    limit = runtime.options.max_message_chars
    if len(body.content) > limit:
        raise ApiError(400, f"content is {len(body.content)} characters long; the limit is {limit}.",
                       param="content", code="message_too_long")
    turn = served.target.stream(conversation_id, body.content, params=body.params())
    info = request.scope.setdefault("appkit", {})
    info["model"] = served.id
    if runtime.options.log_bodies:
        info["messages"] = [{"role": "user", "content": body.content}]
    served.admit()
    finish = _TurnFinisher(served, turn, request.app.state.metrics, info)
    pieces = pumped(runtime, lambda: turn, turn.cancel, name="appkit-turn")
    try:
        # Wait for the first piece: a message the bot refuses (too long for the model) is a 400,
        # not an error inside a stream that already answered 200.
        first = await anext(pieces, None)
        finish.piece()
    except BaseException:
        finish()
        raise
    if body.stream:
        return EventStream(_turn_events(first, pieces, turn, finish), on_close=finish)
    try:
        rest = await collect(request, pieces)
        finish.ended = True
    finally:
        finish()
    return {**_turn_result(turn), "content": "".join([first or "", *rest]).strip()}


class _TurnFinisher:
    """Once per turn: stop it if the client left, free the gate, count the reply, safety and handoff."""

    def __init__(self, served: Served, turn: Any, metrics: Metrics, info: dict[str, Any]) -> None:
        self.served, self.turn, self.metrics, self.info = served, turn, metrics, info
        self.started = time.perf_counter()
        self.ended = False
        self._done = False

    def piece(self) -> None:
        self.info.setdefault("ttft_ms", round((time.perf_counter() - self.started) * 1000, 1))

    def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        turn = self.turn
        if not self.ended:
            turn.cancel()
        self.served.gate.leave(1, time.perf_counter() - self.started)
        if turn.stats is not None:
            self.metrics.reply(self.served.id, turn.stats)
            self.info["completion_tokens"] = turn.stats.completion_tokens
        for record in (turn.user_message, turn.reply_message):
            if record is not None:
                self.metrics.moderation("support", record.moderation)
        if turn.escalated:
            self.metrics.handoffs.labels(turn.reason or "unknown").inc()


async def _turn_events(first: str | None, pieces: AsyncIterator[str], turn: Any, finish: _TurnFinisher) -> AsyncIterator[str]:
    try:
        if first:
            yield sse({"type": "delta", "content": first})
        async for piece in pieces:
            if piece:
                yield sse({"type": "delta", "content": piece})
    except Exception as e:  # after the 200: report inside the stream
        yield sse({"type": "error", **stream_error(e)})
        return
    finish.ended = True
    yield sse({"type": "done", **_turn_result(turn)})


def _turn_result(turn: Any) -> dict[str, Any]:
    reply, user = turn.reply_message, turn.user_message
    conv = turn.bot.store.get_conversation(turn.conversation_id)
    return {"conversation": _conversation(conv), "user_message": _message(user) if user else None,
            "reply": _message(reply) if reply else None, "escalated": turn.escalated, "reason": turn.reason or None}


@router.post("/v1/conversations/{conversation_id}/messages/{message_id}/feedback", status_code=201,
             summary="Rate a reply of the bot: +1 or -1")
def rate_reply(conversation_id: int, message_id: int, body: Rating, request: Request,
               caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    served = _support(request, caller)
    _owned(_runtime(request), caller, conversation_id)
    try:
        message = served.target.store.get_message(message_id)
    except NotFoundError:
        message = None
    if message is None or message.conversation_id != conversation_id:
        raise ApiError(404, f"message {message_id} is not in conversation {conversation_id}.", code="not_found")
    if message.role != "assistant":
        raise ApiError(400, f"message {message_id} is the customer's; only the bot's replies are rated.",
                       param="message_id", code="invalid_request")
    fb = served.target.rate(message_id, body.rating, body.comment)
    return {"id": fb.id, "object": "feedback", "message_id": fb.message_id, "rating": fb.rating,
            "comment": fb.comment, "created_at": fb.created_at.isoformat()}


@router.post("/v1/conversations/{conversation_id}/handoff", summary="Hand the conversation to a human")
def hand_over(conversation_id: int, request: Request, body: Handoff | None = None,
              caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    served = _support(request, caller)
    _owned(_runtime(request), caller, conversation_id)
    reason = (body or Handoff()).reason
    notice = served.target.escalate(conversation_id, reason)
    request.app.state.metrics.handoffs.labels(reason).inc()
    conv = served.target.store.get_conversation(conversation_id)
    return {"conversation": _conversation(conv), "message": _message(notice)}


@router.post("/v1/conversations/{conversation_id}/agent-reply", status_code=201,
             summary="A human agent's answer in a conversation (stored; retraining learns from it)")
def agent_reply(conversation_id: int, body: AgentReply, request: Request,
                caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    served = _support(request, caller)
    if caller.key is not None and not caller.key.answers_as_agent:
        raise ApiError(403, f"the key {caller.name!r} may not answer as an agent: give your agents' tool a key of "
                       f"its own (`appkit keys create --name helpdesk --app support --app {AGENT_SCOPE}`).",
                       code="agent_not_allowed")
    _owned(_runtime(request), caller, conversation_id, any_owner=True)
    store = served.target.store
    try:
        message = store.agent_reply(conversation_id, body.content, author=f"agent:{body.agent}" if body.agent
                                    else "agent")
        conv = store.set_status(conversation_id, "closed") if body.close else store.get_conversation(conversation_id)
    except StorageError as e:  # a closed conversation
        raise ApiError(409, str(e), code="conflict") from None
    return {"conversation": _conversation(conv), "message": _message(message)}


@router.post("/v1/sentiment", summary="Sentiment of a batch of texts: label, probabilities, polarity")
def sentiment(body: SentimentRequest, request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    runtime = _runtime(request)
    served = runtime.find("sentiment")
    caller.check_scope(served.id)
    limit = runtime.options.max_message_chars
    for i, text in enumerate(body.texts):
        if len(text) > limit:
            raise ApiError(400, f"texts[{i}] is {len(text)} characters long; the limit is {limit}.",
                           param=f"texts[{i}]", code="message_too_long")
    served.admit()
    started = time.perf_counter()
    try:
        results = served.target.analyze(body.texts, warn=False)
    finally:
        served.gate.leave(1, time.perf_counter() - started)
    return {"object": "list", "model": served.model_name,
            "data": [{"index": i, "label": r.label, "probabilities": r.probabilities, "score": r.score,
                      "truncated": r.truncated} for i, r in enumerate(results)]}


@router.post("/v1/write", summary="Write a draft from a brief, in the brand's voice (stored)")
async def write(body: WriteRequest, request: Request, caller: Caller = Depends(current_caller)) -> Any:
    runtime = _runtime(request)
    served = runtime.find("writer")
    caller.check_scope(served.id)
    writer = served.target
    draft = await run_in_threadpool(lambda: writer.stream(body.title, body.format, body.tone, body.words,
                                                          tags=body.tags, seed=body.seed, params=body.params()))
    served.admit()
    started, done = time.perf_counter(), {"ended": False}

    def finish() -> None:
        if not done.get("left"):
            done["left"] = True
            if not done["ended"]:
                draft.cancel()
            served.gate.leave(1, time.perf_counter() - started)

    pieces = pumped(runtime, lambda: draft, draft.cancel, name="appkit-draft")
    if not body.stream:
        try:
            await collect(request, pieces)
            done["ended"] = True
        finally:
            finish()
        return _draft(draft.draft)

    async def events() -> AsyncIterator[str]:
        try:
            async for piece in pieces:
                yield sse({"type": "delta", "content": piece})
        except Exception as e:  # after the 200: report inside the stream
            yield sse({"type": "error", **stream_error(e)})
            return
        done["ended"] = True
        yield sse({"type": "done", "draft": _draft(draft.draft)})

    return EventStream(events(), on_close=finish)


def _draft(d: Any) -> dict[str, Any]:
    return {"object": "draft", "text": d.text, "words": d.words, "document_id": d.document_id, "model": d.model_name,
            "brief": d.brief, "safety": d.safety, "finish": d.finish, "tokens": d.tokens, "seed": d.seed}
