"""Blocking generators (an engine stream, a support turn, a draft) served to async HTTP handlers.

The app APIs are plain iterators that block between pieces, and a support turn writes to the
database as it goes. Each runs in a thread of its own (tracked by the Runtime, so shutdown
waits for it to store what it produced); its pieces cross to the event loop through
``call_soon_threadsafe``. When the client goes away the async side calls ``cancel``: the engine
drops the reply at its next step and the thread ends after storing the partial reply.
A raw engine stream needs no thread: the engine wakes the event loop itself (engine_pieces).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.responses import StreamingResponse

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

    from appkit.serve.runtime import Runtime

T = TypeVar("T")
_ITEM, _END, _ERROR = range(3)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def pumped(runtime: Runtime, source: Callable[[], Iterable[T]], cancel: Callable[[], None] | None,
                 name: str = "appkit-stream") -> AsyncIterator[T]:
    """Iterate ``source()`` in a thread and yield its items here; ``cancel()`` if the consumer stops early."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    def put(item: tuple[int, Any]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (the server stopped): nobody is listening
            pass

    def run() -> None:
        try:
            for x in source():
                put((_ITEM, x))
            put((_END, None))
        except BaseException as e:  # noqa: BLE001 - re-raised on the async side
            put((_ERROR, e))

    runtime.spawn(run, name)
    finished = False
    try:
        while True:
            kind, value = await queue.get()
            if kind == _END:
                finished = True
                return
            if kind == _ERROR:
                finished = True
                raise value
            yield value
    finally:
        if not finished and cancel is not None:
            cancel()


async def engine_pieces(stream: Any) -> AsyncIterator[str]:
    """An engine ReplyStream's pieces, read on the event loop without a thread of its own.

    The engine's worker calls the waker after each piece (``call_soon_threadsafe``); closing
    this generator early cancels the reply.
    """
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    stream.set_waker(lambda: loop.call_soon_threadsafe(ready.set))
    done = False
    try:
        while True:
            pieces, done = stream.poll()
            for piece in pieces:
                yield piece
            if done:
                return
            await ready.wait()
            ready.clear()
    finally:
        if not done:
            stream.cancel()


async def collect(request: Request, items: AsyncIterator[T]) -> list[T]:
    """All of ``items``; if the client disconnects first, stop them and raise ClientGone."""

    async def gather() -> list[T]:
        return [x async for x in items]

    work = asyncio.ensure_future(gather())
    gone = asyncio.ensure_future(_disconnected(request.receive))
    try:
        done, _ = await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if work in done:
        return work.result()
    work.cancel()  # closes ``items``, which cancels the generation
    try:
        await work
    except (asyncio.CancelledError, Exception):
        pass
    raise ClientGone()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def sse(data: Any) -> str:
    """One server-sent event: ``data: <json>`` (or the literal ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n"


class EventStream(StreamingResponse):
    """An SSE response that notices a disconnected client at once and always closes its iterator.

    Starlette's StreamingResponse on ASGI 2.4 servers finds out only when a write fails and
    leaves the iterator to the garbage collector; here a listener ends the stream as soon as
    the client goes, and closing the iterator cancels the generation behind it.
    """

    def __init__(self, content: AsyncIterator[str], *, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio

        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:  # the client went away mid-write
                        pass
                    group.cancel_scope.cancel()

                async def listen() -> None:
                    await _disconnected(receive)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                group.start_soon(listen)
        finally:
            try:
                aclose = getattr(self._content, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                if self._on_close is not None:  # also when the stream never started
                    self._on_close()
