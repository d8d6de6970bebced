"""`appkit serve` under load and while stopping: a full queue, clients that leave, SIGTERM mid-reply.

The model here has random weights and a 1024-token context (the support model's tokenizer,
case index and metadata): its replies run as long as ``min_tokens`` asks, so a reply is
certainly still being written when a client leaves or the server is told to stop. The server
takes one reply at a time and queues one more (``--max-batch 1 --max-queue 1``).
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.serve.conftest import metric, register, wait_until

LONG = {"min_tokens": 600, "max_tokens": 600, "temperature": 1.0}  # a reply still running when something happens
MEDIUM = {"min_tokens": 250, "max_tokens": 250, "temperature": 1.0}  # run to its end
ORDER = [{"role": "user", "content": "where is my order?"}]


@pytest.fixture(scope="module")
def long_model(tmp_path_factory: pytest.TempPathFactory, support_model_dir: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = tmp_path_factory.mktemp("long-model") / "long"
    shutil.copytree(support_model_dir, path)
    config = json.loads((path / "config.json").read_text())
    config["max_position_embeddings"] = 1024
    (path / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, long_model: Path) -> Path:
    home = tmp_path_factory.mktemp("serve-life") / "home"
    register(home, "long-support", "support", long_model)
    register(home, "long-chat", "base", long_model)
    # These tests need replies long enough to still be running when something happens: generated ones.
    (home / "appkit.toml").write_text('[support]\nreply_mode = "generate"\n')
    return home


@pytest.fixture(scope="module")
def server(server_factory, home: Path):
    return server_factory(home, "--app", "support", "--model", "long-chat", "--max-batch", "1", "--max-queue", "1",
                          "--shutdown-grace", "60")


@pytest.fixture(scope="module")
def store(home: Path):
    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings(home=home)) as s:
        yield s


def _chat(stream: bool = True, length: dict = MEDIUM) -> dict:
    return {"model": "long-chat", "messages": ORDER, "stream": stream, **length}


def _events(lines) -> list[dict]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_a_full_model_answers_429_with_retry_after_instead_of_hanging(server):
    api = server.http()
    with api.stream("POST", "/v1/chat/completions", json=_chat()) as running, \
            api.stream("POST", "/v1/chat/completions", json=_chat()) as waiting:
        assert running.status_code == waiting.status_code == 200
        refused = api.post("/v1/chat/completions", json=_chat(stream=False))
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "overloaded" and int(refused.headers["Retry-After"]) >= 1
        finishes = [[c["choices"][0]["finish_reason"] for c in _events(r.iter_lines()) if c["choices"]][-1]
                    for r in (running, waiting)]
    assert finishes == ["length", "length"]  # both admitted replies ran to their end
    assert metric(api.get("/metrics").text, "appkit_rejected_requests_total", reason="overloaded") >= 1


def test_a_client_that_leaves_mid_stream_cancels_its_generation(server):
    api = server.http()
    before = api.get("/metrics").text
    with api.stream("POST", "/v1/chat/completions", json=_chat(length=LONG)) as r:
        lines = r.iter_lines()
        assert [next(lines) for _ in range(4)]  # the role chunk and a few tokens, then hang up

    def cancelled() -> str | None:
        text = api.get("/metrics").text
        done = metric(text, "appkit_generations_total", model="long-chat", finish_reason="cancelled")
        return text if done > metric(before, "appkit_generations_total", model="long-chat",
                                     finish_reason="cancelled") else None

    after = wait_until(cancelled, what="the generation to be cancelled")
    made = metric(after, "appkit_generated_tokens_total", model="long-chat") - \
        metric(before, "appkit_generated_tokens_total", model="long-chat")
    assert 0 < made < LONG["max_tokens"]
    assert wait_until(lambda: metric(api.get("/metrics").text, "appkit_running_replies", model="long-chat") == 0
                      or None, what="the engine to be idle")


def test_a_customer_who_leaves_mid_reply_gets_it_stored_as_stopped(server, store):
    api = server.http()
    conv = api.post("/v1/conversations", json={}).json()
    with api.stream("POST", f"/v1/conversations/{conv['id']}/messages", json={"content": "hello", **LONG}) as r:
        first = next(line for line in r.iter_lines() if line.startswith("data: "))
        assert json.loads(first[6:])["type"] == "delta"

    def reply():
        stored = store.messages(conv["id"])
        return stored[1] if len(stored) > 1 else None

    stopped = wait_until(reply, what="the partial reply to be stored")
    assert stopped.role == "assistant" and stopped.status == "stopped"
    assert 0 < stopped.completion_tokens < LONG["max_tokens"]
    assert store.get_conversation(conv["id"]).status == "open"  # a stopped reply is not handed over


def test_sigterm_lets_a_running_reply_finish_and_stores_it(server, store):
    # The last test of the module: it stops the module's server.
    api = server.http()
    conv = api.post("/v1/conversations", json={}).json()
    with api.stream("POST", f"/v1/conversations/{conv['id']}/messages", json={"content": "hello", **LONG}) as r:
        lines = r.iter_lines()
        first = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
        assert first["type"] == "delta"
        server.proc.send_signal(signal.SIGTERM)  # while the reply is being written
        events = [first, *_events(lines)]
    done = [e for e in events if e["type"] == "done"]
    assert done and done[0]["reply"]["status"] == "ok"
    assert server.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn ends by the signal after a graceful stop
    reply = store.messages(conv["id"])[1]
    assert reply.status == "ok" and reply.completion_tokens == LONG["max_tokens"]
    streamed = "".join(e["content"] for e in events if e["type"] == "delta")
    assert streamed.strip().startswith(reply.content)  # then the low-confidence handoff of a random model
    assert "stopped" in server.stderr
