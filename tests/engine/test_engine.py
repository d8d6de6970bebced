"""The inference engine against a real tiny model trained in the session."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from appkit.engine import GREEDY, Engine, GenerationParams
from appkit.errors import GenerationError

ORDER = [{"role": "user", "content": "where is my order?"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    eng = Engine.load(tiny_model_dir)
    yield eng
    eng.close()


def test_greedy_output_equals_plain_transformers_generate(engine, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for messages in (ORDER, [{"role": "user", "content": "I forgot my password"}]):
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**enc, max_new_tokens=40, do_sample=False)
        expected = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        got = engine.reply(messages, GenerationParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0))
        assert got.text == expected.strip()


def test_reply_is_on_topic_and_stops_at_end_of_turn(engine):
    reply = engine.reply(ORDER, GREEDY)
    assert "order" in reply.text.lower()
    assert reply.stats.finish_reason == "end_of_turn"
    assert reply.stats.time_to_first_token_s > 0 and reply.stats.completion_tokens > 3


def test_generation_prints_no_library_warnings(engine):
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # catches the worker thread's too: the filters are global
        warnings.simplefilter("always")
        engine.reply(ORDER, GREEDY)
    assert [str(w.message) for w in caught] == []


def test_stream_yields_pieces_that_join_to_the_reply(engine):
    stream = engine.stream(ORDER, GREEDY)
    pieces = list(stream)
    assert len(pieces) > 2
    assert "".join(pieces).strip() == engine.reply(ORDER, GREEDY).text


@contextmanager
def decode_steps(engine, *, hold_at: int | None = None) -> Iterator[tuple[list[int], threading.Event, threading.Event]]:
    """Watch the engine's real model: yields (rows of each decode step, reached, release).

    With ``hold_at``, the worker stops inside that decode step until ``release`` is set
    (``reached`` says it got there), so a test can act at a known point of a generation.
    """
    rows: list[int] = []
    reached, release = threading.Event(), threading.Event()

    def watch(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is None or ids.shape[1] != 1:
            return  # a prefill (whole prompts) or a scoring pass, not a decode step
        rows.append(ids.shape[0])
        if hold_at is not None and len(rows) == hold_at:
            reached.set()
            release.wait(timeout=60)

    hook = engine.model.register_forward_pre_hook(watch, with_kwargs=True)
    try:
        yield rows, reached, release
    finally:
        release.set()
        hook.remove()


def test_concurrent_requests_are_batched_and_match_their_single_answers(engine):
    prompts = [[{"role": "user", "content": q}] for q in
               ["where is my order", "I want a refund", "reset my password", "agent please"] * 2]
    single = [engine.reply(p, GREEDY).text for p in prompts]
    long = GenerationParams(temperature=0, min_new_tokens=60, max_new_tokens=60)
    # A long reply holds the worker inside a decode step while eight more requests arrive: at the
    # next step they must all join it, one batch of nine rows, and each still get its own answer.
    with decode_steps(engine, hold_at=3) as (rows, reached, release):
        running = engine.stream(ORDER, long)
        assert reached.wait(timeout=60)
        streams = [engine.stream(p, GREEDY) for p in prompts]
        release.set()
        results = ["".join(s).strip() for s in streams]
        "".join(running)
    assert results == single
    assert max(rows) == 1 + len(prompts), f"rows per decode step: {rows}"
    assert running.stats.completion_tokens == 60


def test_sampling_is_reproducible_with_a_seed(engine):
    params = GenerationParams(temperature=1.2, top_p=0.95, top_k=0, seed=42, max_new_tokens=30)
    assert engine.reply(ORDER, params).text == engine.reply(ORDER, params).text


def test_max_tokens_and_stop_strings(engine):
    short = engine.reply(ORDER, GenerationParams(temperature=0, max_new_tokens=3))
    assert short.stats.completion_tokens == 3 and short.stats.finish_reason == "length"
    full = engine.reply(ORDER, GREEDY).text
    word = full.split()[2]
    stopped = engine.reply(ORDER, GenerationParams(temperature=0, stop=(word,)))
    assert stopped.stats.finish_reason == "stop"
    assert word not in stopped.text and full.startswith(stopped.text)


def test_cancel_stops_generation(engine):
    # Forced to 200 tokens unless cancelled; the cancel arrives while the 5th token is computed.
    params = GenerationParams(temperature=1.0, min_new_tokens=200, max_new_tokens=200, repetition_penalty=1.0)
    with decode_steps(engine, hold_at=5) as (_, reached, release):
        stream = engine.stream(ORDER, params)
        assert reached.wait(timeout=60)
        stream.cancel()
        release.set()
        list(stream)
    assert stream.stats.finish_reason == "cancelled"
    assert stream.stats.completion_tokens <= 6, "generation went on after cancel()"


def test_prompt_longer_than_context_is_a_clear_error(engine):
    with pytest.raises(GenerationError, match="context"):
        engine.stream([{"role": "user", "content": "order " * 2000}])


@pytest.mark.e2e  # a fresh appkit process: kept out of the quick tier, as the other process tests
def test_saved_model_works_with_plain_transformers_and_no_appkit(engine, tiny_model_dir):
    code = f"""
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(tiny_model_dir)!r})
model = AutoModelForCausalLM.from_pretrained({str(tiny_model_dir)!r})
enc = tok.apply_chat_template([{{"role": "user", "content": "where is my order"}}], add_generation_prompt=True,
                              return_tensors="pt", return_dict=True)
out = model.generate(**enc, max_new_tokens=30, do_sample=False)
print(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
assert not any(m == "appkit" or m.startswith("appkit.") for m in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    ours = engine.reply([{"role": "user", "content": "where is my order"}],
                        GenerationParams(temperature=0, repetition_penalty=1.0, max_new_tokens=30))
    assert done.stdout.strip() == ours.text and ours.text


@pytest.mark.e2e  # a separate Python process and its exit
def test_a_script_that_never_closes_its_engine_still_exits_cleanly(tiny_model_dir, tmp_path):
    # A library user's script that ends while a reply is still being generated (it read only the
    # first piece) and never closes the engine: the worker thread, busy in torch, must not take
    # the interpreter down at exit ("terminate called without an active exception", exit 134).
    # The toy model's matrices are too small for torch to run them in parallel, which is when the
    # abort happens, so this widens it (random weights: only the exit is under test).
    import json
    import shutil

    from transformers import AutoConfig, AutoModelForCausalLM

    wide = tmp_path / "wide"
    shutil.copytree(tiny_model_dir, wide)
    config = json.loads((wide / "config.json").read_text())
    config.update(hidden_size=1024, intermediate_size=2816, num_hidden_layers=2)
    (wide / "config.json").write_text(json.dumps(config))
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(wide)).save_pretrained(wide)
    code = f"""
import appkit
from appkit.engine import GenerationParams
engine = appkit.load({str(wide)!r})
stream = engine.stream([{{"role": "user", "content": "where is my order"}}],
                       GenerationParams(max_new_tokens=200, min_new_tokens=200))
print(next(iter(stream)))
"""
    for _ in range(2):  # the exit races the worker; without the fix 3 runs in 4 aborted
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "terminate called" not in done.stderr


def test_repetition_penalty_counts_the_reply_only(engine):
    """A greedy reply under a penalty equals a plain loop that penalises the reply's own tokens only."""
    import torch

    from appkit.engine.sampling import apply_repetition_penalty

    penalty, n = 3.0, 30
    password = [{"role": "user", "content": "I forgot my password, the password reset does not work"}]
    prompt = engine.prompt_ids(password)
    ids, reply = list(prompt), []
    with torch.inference_mode():
        for _ in range(n):
            logits = engine.model(torch.tensor([ids])).logits[0, -1]
            token = int(apply_repetition_penalty(logits, torch.tensor(reply, dtype=torch.long), penalty).argmax())
            if token in engine.stop_ids:
                break
            ids.append(token)
            reply.append(token)
    expected = engine.tokenizer.decode(reply, skip_special_tokens=True).strip()
    got = engine.reply(password, GenerationParams(max_new_tokens=n, temperature=0, repetition_penalty=penalty))
    assert got.text == expected
    assert " password" in got.text.lower()  # the customer's word, taken up, not punished


def test_scores_of_many_replies_equal_scoring_each_alone(engine):
    import torch

    from appkit.tokenizer import end_of_turn_id

    replies = ["Your order is on its way.", "Use the Forgot password link.", "Of course!"]
    got = engine.score(ORDER, replies)
    prompt = engine.prompt_ids(ORDER)
    for reply, score in zip(replies, got):
        target = engine.tokenizer.encode(reply, add_special_tokens=False) + [end_of_turn_id(engine.tokenizer)]
        with torch.inference_mode():
            logp = torch.log_softmax(engine.model(torch.tensor([prompt + target])).logits[0].float(), -1)
        expected = sum(float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(target))
        assert score.tokens == len(target)
        assert abs(score.logprob - expected) < 1e-3
    assert got[0].mean > got[1].mean  # the order reply fits an order question better
