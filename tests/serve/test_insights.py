"""`appkit serve` and the improvement loop: drift gauges on /metrics, human agents' answers over the API.

One real server on 127.0.0.1 over a home whose support model is the session's nano model, with
stored conversations half like its training data and half about something it never saw.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import INTENTS
from tests.serve.conftest import metric, wait_until

NEW = ["how do I cancel my magazine subscription", "cancel the magazine subscription please",
       "stop my magazine subscription now", "I want to end the magazine subscription",
       "unsubscribe me from the magazine"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, support_model_dir: Path, toy_history: Path) -> Path:
    from appkit.config import load_settings
    from appkit.store import open_store

    home = tmp_path_factory.mktemp("serve-insights") / "home"
    home.mkdir()
    with open_store(load_settings(home=home), upgrade=True) as store:
        store.register_model("toy-support", "support", str(support_model_dir), status="active",
                             data={"history": str(toy_history)})
        known = [q for questions, _ in INTENTS.values() for q in questions[:2]] + ["where is my order"] * 2
        for text in known + NEW * 2:
            conv = store.create_conversation("support")
            store.append_message(conv.id, "user", text)
            store.append_message(conv.id, "assistant", "a reply", model_name="toy-support", latency_ms=50)
    return home


@pytest.fixture(scope="module")
def server(server_factory, home: Path):
    return server_factory(home, "--app", "support")


def test_metrics_export_the_drift_of_the_last_week(server):
    api = server.http()

    def measured() -> str | None:
        text = api.get("/metrics").text
        return text if metric(text, "appkit_drift_messages", app="support") else None

    # The first scrape starts the measurement in the background; a later one shows it.
    text = wait_until(measured, timeout=120, what="the drift gauges")
    assert metric(text, "appkit_drift_messages", app="support", model="toy-support") == 20
    assert metric(text, "appkit_drift_score", app="support") == pytest.approx(0.5)
    assert metric(text, "appkit_drift_warning", app="support") == 1.0
    assert metric(text, "appkit_drift_threshold", app="support") == pytest.approx(0.15)
    assert metric(text, "appkit_drift_unseen_words_share", app="support") > 0.2


def test_an_agent_answers_a_conversation_over_the_api(server):
    api = server.http()
    conv = api.post("/v1/conversations", json={}).json()
    r = api.post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": "I refunded you.", "agent": "ann"})
    assert r.status_code == 201, r.text
    message = r.json()["message"]
    assert (message["role"], message["author"], message["content"]) == ("assistant", "agent:ann", "I refunded you.")
    assert api.get(f"/v1/conversations/{conv['id']}").json()["messages"][-1]["author"] == "agent:ann"

    empty = api.post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": ""})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "content"
    spaced = api.post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": "hi", "agent": "two words"})
    assert spaced.status_code == 400 and spaced.json()["error"]["param"] == "agent"
    closed = api.post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": "Bye.", "close": True})
    assert closed.json()["conversation"]["status"] == "closed"
    again = api.post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": "Hello?"})
    assert again.status_code == 409 and "closed" in again.json()["error"]["message"]


def test_only_a_key_with_the_agent_scope_may_answer_as_an_agent(server, home):
    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings(home=home)) as store:
        _, web = store.create_api_key("web", apps=["support"], rate_per_minute=600)
        _, desk = store.create_api_key("helpdesk", apps=["support", "agent"], rate_per_minute=600)
        _, everything = store.create_api_key("admin", apps=None, rate_per_minute=600)
    conv = server.http(web).post("/v1/conversations", json={}).json()
    for key in (web, everything):  # a customer-facing key cannot put words in an agent's mouth
        denied = server.http(key).post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": "x"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "agent_not_allowed"
    # The agents' tool answers conversations other keys started.
    ok = server.http(desk).post(f"/v1/conversations/{conv['id']}/agent-reply", json={"content": "Done."})
    assert ok.status_code == 201 and ok.json()["message"]["author"] == "agent"
