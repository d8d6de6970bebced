"""The engine under a server's load: requests joining a running batch, a bounded queue, close()."""

from __future__ import annotations

import threading

import pytest

from appkit.engine import Engine, GenerationParams
from appkit.errors import GenerationError, OverloadedError

ORDER = [{"role": "user", "content": "where is my order?"}]
LONG = GenerationParams(max_new_tokens=200, min_new_tokens=200, temperature=0.8)


@pytest.fixture
def engine(tiny_model_dir):
    eng = Engine.load(tiny_model_dir, max_batch=2)
    yield eng
    eng.close()


def _started(stream):
    """Wait for the first piece of ``stream``; keep the returned iterator (dropping it cancels the reply)."""
    pieces = iter(stream)
    assert next(pieces)
    return pieces


def _drain(streams, timeout: float = 60) -> list[str]:
    """Read every stream to its end in threads; fail (instead of hanging) if one never ends."""
    texts = [""] * len(streams)

    def read(i: int) -> None:
        texts[i] = "".join(streams[i])

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a consumer was left waiting after its reply ended"
    return texts


def test_a_request_joins_a_running_batch_instead_of_waiting_for_it_to_end(engine):
    long = engine.stream(ORDER, LONG)
    pieces = _started(long)  # the long reply is being decoded
    short = engine.reply([{"role": "user", "content": "I want a refund"}], GenerationParams(max_new_tokens=5))
    assert short.stats.finish_reason == "length" and short.stats.completion_tokens == 5
    assert not long.done  # the short one was admitted and finished while the long one ran
    long.cancel()
    _drain([pieces])
    assert long.stats.finish_reason == "cancelled" and long.stats.completion_tokens < 200


def test_close_cancels_running_and_queued_replies_and_refuses_new_ones(engine):
    streams = [engine.stream(ORDER, LONG) for _ in range(5)]  # 2 run (max_batch), 3 wait
    first = _started(streams[0])
    assert engine.running == 2 and engine.queue_depth == 3
    closer = threading.Thread(target=engine.close)
    closer.start()
    closer.join(30)
    assert not closer.is_alive()
    _drain([first, *streams[1:]])
    assert [s.stats.finish_reason for s in streams] == ["cancelled"] * 5
    assert all(s.stats.completion_tokens < 200 for s in streams)
    with pytest.raises(GenerationError, match="closed"):
        engine.stream(ORDER)


def test_close_returns_in_bounded_time_when_a_model_step_hangs(engine):
    release = threading.Event()
    stalled = threading.Event()
    running = engine.stream(ORDER, LONG)
    pieces = _started(running)

    def stall(module, args, kwargs):  # the next forward pass hangs until released
        stalled.set()
        release.wait(60)

    handle = engine.model.register_forward_pre_hook(stall, with_kwargs=True)
    try:
        assert stalled.wait(30)
        queued = engine.stream(ORDER, LONG)
        engine.close(timeout=0.5)
        _drain([pieces, queued])
        assert running.stats.finish_reason == queued.stats.finish_reason == "cancelled"
    finally:
        handle.remove()
        release.set()


def test_a_full_queue_refuses_with_overloaded_and_a_cancelled_request_frees_its_place(tiny_model_dir):
    engine = Engine.load(tiny_model_dir, max_batch=1, max_queue=1)
    try:
        running = engine.stream(ORDER, LONG)
        pieces = _started(running)
        waiting = engine.stream(ORDER, LONG)
        with pytest.raises(OverloadedError, match="busy"):
            engine.stream(ORDER, LONG)
        waiting.cancel()
        assert engine.queue_depth == 0
        again = engine.stream(ORDER, GenerationParams(max_new_tokens=3))
        running.cancel()
        _drain([pieces, waiting, again])
        assert waiting.stats.finish_reason == "cancelled"
        assert again.stats.finish_reason == "length"
    finally:
        engine.close()
