"""`appkit serve` driven by the official openai client and httpx: the OpenAI routes, app routes, keys.

One server for the module, serving the support app and a raw chat model (``toy-chat``), with
API keys in its store (so every request needs one).
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from tests.serve.conftest import metric, register

ORDER = [{"role": "user", "content": "where is my order?"}]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, support_model_dir: Path, tiny_model_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("serve-api") / "home"
    register(home, "toy-support", "support", support_model_dir)
    register(home, "toy-chat", "base", tiny_model_dir)
    return home


@pytest.fixture(scope="module")
def store(home: Path):
    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings(home=home)) as s:
        yield s


@pytest.fixture(scope="module")
def keys(store) -> dict[str, str]:
    made = {"main": store.create_api_key("main", rate_per_minute=10_000)[1],
            "other": store.create_api_key("other", rate_per_minute=10_000)[1],
            "chat-only": store.create_api_key("chat-only", apps=["toy-chat"], rate_per_minute=10_000)[1],
            "slow": store.create_api_key("slow", rate_per_minute=3)[1]}
    return made


@pytest.fixture(scope="module")
def server(server_factory, home: Path, keys: dict[str, str]):
    return server_factory(home, "--app", "support", "--model", "toy-chat", "--cors-origin", "https://shop.example")


@pytest.fixture(scope="module")
def client(server, keys):
    return server.openai(keys["main"])


def test_a_reply_through_the_openai_client_is_the_models_own(client, tiny_model_dir):
    from appkit.engine import Engine, GenerationParams

    reply = client.chat.completions.create(model="toy-chat", messages=ORDER, temperature=0, max_tokens=40,
                                           extra_body={"repetition_penalty": 1.0})
    engine = Engine.load(tiny_model_dir)
    try:
        local = engine.reply(ORDER, GenerationParams(temperature=0, repetition_penalty=1.0, max_new_tokens=40))
    finally:
        engine.close()
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.strip() == local.text and "order" in local.text.lower()
    assert choice.finish_reason == "stop"
    assert reply.model == "toy-chat" and reply.id.startswith("chatcmpl-")
    assert reply.usage.prompt_tokens == local.stats.prompt_tokens
    assert reply.usage.completion_tokens == local.stats.completion_tokens
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streaming_gives_the_same_text_in_pieces_then_usage(client):
    args = dict(model="toy-chat", messages=ORDER, temperature=0, max_tokens=40)
    whole = client.chat.completions.create(**args).choices[0].message.content
    chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 2
    assert "".join(pieces) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_max_tokens_stop_n_and_seed(client):
    forced = client.chat.completions.create(model="toy-chat", messages=ORDER, max_tokens=5,
                                            extra_body={"min_tokens": 5})
    assert forced.choices[0].finish_reason == "length" and forced.usage.completion_tokens == 5
    full = client.chat.completions.create(model="toy-chat", messages=ORDER, temperature=0).choices[0].message.content
    word = full.split()[2]
    cut = client.chat.completions.create(model="toy-chat", messages=ORDER, temperature=0, stop=[word])
    assert word not in cut.choices[0].message.content and full.startswith(cut.choices[0].message.content)
    two = client.chat.completions.create(model="toy-chat", messages=ORDER, n=2, seed=7, temperature=1.5, max_tokens=20)
    again = client.chat.completions.create(model="toy-chat", messages=ORDER, n=2, seed=7, temperature=1.5, max_tokens=20)
    assert [c.index for c in two.choices] == [0, 1]
    assert [c.message.content for c in two.choices] == [c.message.content for c in again.choices]
    assert 0 < two.usage.completion_tokens <= 40


def test_the_support_app_answers_with_its_prompts_and_hands_over(client):
    from tests.conftest import INTENTS

    reply = client.chat.completions.create(model="support", messages=ORDER, temperature=0)
    assert reply.choices[0].message.content == INTENTS["order"][1]  # the past answer the grounding chose
    assert reply.usage.prompt_tokens > 10  # the app's system prompt is in it
    human = client.chat.completions.create(model="support", messages=[{"role": "user", "content": "I want a human agent"}])
    assert "team" in human.choices[0].message.content.lower()


def test_moderations_come_from_appkits_own_backend(client):
    result = client.moderations.create(input=["you are an idiot", "thanks for the quick help"])
    toxic, clean = result.results
    assert toxic.flagged and toxic.categories.harassment and toxic.category_scores.harassment > 0.5
    assert not clean.flagged and not clean.categories.harassment
    assert result.model == "appkit-lexicon"


def test_models_are_listed_as_the_key_may_use_them(server, keys):
    assert {m.id for m in server.openai(keys["main"]).models.list()} == {"support", "toy-chat"}
    assert [m.id for m in server.openai(keys["chat-only"]).models.list()] == ["toy-chat"]
    with pytest.raises(openai.PermissionDeniedError, match="may not use 'support'"):
        server.openai(keys["chat-only"]).chat.completions.create(model="support", messages=ORDER)


def test_missing_wrong_and_revoked_keys_are_refused(server, store, keys):
    missing = server.http().get("/v1/models")
    assert missing.status_code == 401 and "needs an API key" in missing.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        server.openai("ak-wrong").models.list()
    _, doomed = store.create_api_key("doomed")
    assert server.openai(doomed).models.list()
    store.revoke_api_key("doomed")
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        server.openai(doomed).models.list()


def test_a_key_sees_only_its_own_conversations(server, keys):
    mine, theirs = server.http(keys["main"]), server.http(keys["other"])
    conv = mine.post("/v1/conversations", json={"user": "u1"}).json()
    reply = mine.post(f"/v1/conversations/{conv['id']}/messages", json={"content": "where is my order?", "stream": False})
    assert reply.status_code == 200 and "order" in reply.json()["content"].lower()
    assert mine.get(f"/v1/conversations/{conv['id']}").json()["messages"][1]["role"] == "assistant"
    for call in (lambda c: c.get(f"/v1/conversations/{conv['id']}"),
                 lambda c: c.post(f"/v1/conversations/{conv['id']}/messages", json={"content": "hi"}),
                 lambda c: c.post(f"/v1/conversations/{conv['id']}/handoff", json={})):
        answer = call(theirs)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert mine.get("/v1/conversations/999999").status_code == 404  # the same answer as for another key's


def test_a_streamed_support_turn_is_stored_rated_and_handed_over(server, keys, store):
    api = server.http(keys["main"])
    conv = api.post("/v1/conversations", json={}).json()
    with api.stream("POST", f"/v1/conversations/{conv['id']}/messages", json={"content": "I forgot my password"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    deltas = "".join(e["content"] for e in events if e["type"] == "delta")
    done = events[-1]
    assert done["type"] == "done" and not done["escalated"]
    stored = store.messages(conv["id"])
    assert [m.role for m in stored] == ["user", "assistant"] and stored[1].content == deltas.strip()
    assert done["reply"]["id"] == stored[1].id and stored[1].status == "ok"
    rated = api.post(f"/v1/conversations/{conv['id']}/messages/{stored[1].id}/feedback", json={"rating": -1})
    assert rated.status_code == 201 and store.feedback_for(conv["id"])[0].rating == -1
    assert api.post(f"/v1/conversations/{conv['id']}/messages/{stored[0].id}/feedback",
                    json={"rating": 1}).status_code == 400  # the customer's own message
    handed = api.post(f"/v1/conversations/{conv['id']}/handoff", json={"reason": "asked_for_human"}).json()
    assert handed["conversation"]["status"] == "escalated"
    assert store.get_conversation(conv["id"]).status == "escalated"


def test_bad_requests_get_openai_errors_naming_the_problem(server, keys):
    api = server.http(keys["main"])
    bad_json = api.post("/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    bad_field = api.post("/v1/chat/completions", json={"model": "toy-chat", "messages": ORDER, "temperature": 9})
    assert bad_field.status_code == 400 and bad_field.json()["error"]["param"] == "temperature"
    missing = api.post("/v1/chat/completions", json={"model": "toy-chat"})
    assert missing.status_code == 400 and missing.json()["error"]["message"] == "messages is required."
    tools = api.post("/v1/chat/completions", json={"model": "toy-chat", "messages": ORDER, "tools": [{"type": "function"}]})
    assert tools.status_code == 400 and tools.json()["error"]["param"] == "tools"
    huge = api.post("/v1/chat/completions", content=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"
    long = api.post("/v1/chat/completions", json={"model": "toy-chat", "messages": [{"role": "user", "content": "a" * 20_000}]})
    assert long.status_code == 400 and long.json()["error"]["param"] == "messages[0].content"
    with pytest.raises(openai.NotFoundError, match="'gpt-4o' does not exist"):
        server.openai(keys["main"]).chat.completions.create(model="gpt-4o", messages=ORDER)
    no_route = api.get("/v2/anything")
    assert no_route.status_code == 404 and "error" in no_route.json()


def test_a_key_over_its_rate_gets_429_with_retry_after(server, keys):
    api = server.http(keys["slow"])
    answers = [api.get("/v1/models") for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert answers[3].status_code == 429 and answers[3].json()["error"]["code"] == "rate_limit_exceeded"
    assert int(answers[3].headers["Retry-After"]) >= 1


def test_health_readiness_metrics_and_the_access_log(server, keys):
    api = server.http()
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert api.get("/docs").status_code == 200 and "/v1/sentiment" in api.get("/openapi.json").text
    server.openai(keys["main"]).chat.completions.create(model="toy-chat", messages=ORDER, max_tokens=8)
    text = api.get("/metrics").text
    assert metric(text, "appkit_http_requests_total", route="/v1/chat/completions", status="200") >= 1
    assert metric(text, "appkit_time_to_first_token_seconds_count", model="toy-chat") >= 1
    assert metric(text, "appkit_generated_tokens_total", model="toy-chat") >= 8
    assert metric(text, "appkit_batch_size_count", model="toy-chat") >= 1
    assert "appkit_queue_depth" in text and "appkit_safety_actions_total" in text
    assert metric(text, "appkit_rejected_requests_total", reason="rate_limited") >= 1
    lines = server.access_log()
    chat = [line for line in lines if line["route"] == "/v1/chat/completions" and line["status"] == 200]
    assert chat and {"request_id", "ms", "key", "model", "ttft_ms"} <= set(chat[-1]) and chat[-1]["key"] == "main"
    assert "where is my order" not in server.stderr  # no message text in the log by default


def test_only_configured_browser_origins_may_call_the_api(server):
    api = server.http()
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = api.options("/v1/chat/completions", headers={"Origin": "https://shop.example", **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://shop.example"
    other = api.options("/v1/chat/completions", headers={"Origin": "https://elsewhere.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
