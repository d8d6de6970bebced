"""``GenerationParams.min_new_tokens``: no end-of-turn before a minimum length, on a real tiny model."""

from __future__ import annotations

import pytest

from appkit.engine import Engine, GenerationParams
from appkit.errors import ConfigError

ORDER = [{"role": "user", "content": "where is my order?"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    eng = Engine.load(tiny_model_dir)
    yield eng
    eng.close()


def test_end_of_turn_is_held_off_until_the_minimum(engine):
    natural = engine.reply(ORDER, GenerationParams(temperature=0, max_new_tokens=100))
    assert natural.stats.finish_reason == "end_of_turn"
    n = natural.stats.completion_tokens
    longer = engine.reply(ORDER, GenerationParams(temperature=0, max_new_tokens=n + 40, min_new_tokens=n + 20))
    assert longer.stats.completion_tokens >= n + 20
    # Greedy: the first n tokens are the natural reply's, then it goes on where it would have stopped.
    assert longer.text.startswith(natural.text)


def test_the_minimum_applies_to_sampling_and_batches_too(engine):
    params = GenerationParams(temperature=1.0, max_new_tokens=60, min_new_tokens=45, seed=3)
    streams = [engine.stream(ORDER, params) for _ in range(3)]
    for s in streams:
        "".join(s)
        assert s.stats.completion_tokens >= 45


def test_a_minimum_beyond_the_room_left_is_clipped_with_the_maximum(engine):
    prompt = len(engine.prompt_ids(ORDER))
    room = engine.context_length - prompt
    stream = engine.stream(ORDER, GenerationParams(temperature=0, max_new_tokens=room + 50, min_new_tokens=room + 10))
    "".join(stream)
    assert stream.stats.completion_tokens == room and stream.stats.finish_reason == "length"


@pytest.mark.parametrize("minimum, maximum", [(-1, 10), (11, 10)])
def test_an_impossible_minimum_is_a_clear_error(minimum, maximum):
    with pytest.raises(ConfigError, match="min_new_tokens"):
        GenerationParams(min_new_tokens=minimum, max_new_tokens=maximum)


def test_requests_started_from_many_threads_share_one_worker(tiny_model_dir):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    before = set(threading.enumerate())
    eng = Engine.load(tiny_model_dir)
    barrier = threading.Barrier(8)

    def ask(_):
        barrier.wait()  # all eight submit at once: the first request of a fresh engine races to start a worker
        return eng.reply(ORDER, GenerationParams(temperature=0, max_new_tokens=5)).text

    with ThreadPoolExecutor(8) as pool:
        assert len(set(pool.map(ask, range(8)))) == 1
    workers = [t for t in threading.enumerate() if t not in before and t.name.startswith("appkit-engine-")]
    eng.close()
    assert len(workers) == 1 and not workers[0].is_alive()  # the one worker got the stop and ended
