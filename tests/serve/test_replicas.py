"""Two `appkit serve` processes on different ports sharing one PostgreSQL database lose no message.

This is how appkit scales past one machine: replicas behind any load balancer, the store in
PostgreSQL. Customers' turns land on either replica, in parallel, and every message must be
stored once, in order.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.serve.conftest import Server, register

pytestmark = pytest.mark.postgres


@pytest.mark.e2e  # two server processes
def test_two_replicas_on_one_postgres_database_lose_no_message(tmp_path: Path, pg_url: str, support_model_dir: Path):
    from appkit.store import open_store

    home = tmp_path / "home"
    register(home, "toy-support", "support", support_model_dir, database_url=pg_url)
    servers = [Server(home, "--app", "support", database_url=pg_url) for _ in range(2)]
    try:
        starting = [threading.Thread(target=s.start) for s in servers]
        for t in starting:
            t.start()
        for t in starting:
            t.join()
        assert all(s.url for s in servers) and servers[0].url != servers[1].url
        clients = [s.http() for s in servers]

        def conversation(c: int) -> tuple[int, list[str]]:
            conv = clients[c % 2].post("/v1/conversations", json={"user": f"customer-{c}"}).json()
            sent = []
            for turn in range(3):
                text = f"where is my order number {c}-{turn}?"
                answer = clients[(c + turn) % 2].post(f"/v1/conversations/{conv['id']}/messages",
                                                      json={"content": text, "stream": False, "max_tokens": 12})
                assert answer.status_code == 200, answer.text
                sent.append(text)
            return conv["id"], sent

        shared = clients[0].post("/v1/conversations", json={}).json()["id"]

        def into_shared(i: int) -> str:
            text = f"I want a refund {i}"
            answer = clients[i % 2].post(f"/v1/conversations/{shared}/messages",
                                         json={"content": text, "stream": False, "max_tokens": 12})
            assert answer.status_code == 200, answer.text
            return text

        with ThreadPoolExecutor(10) as pool:
            conversations = list(pool.map(conversation, range(4)))
            shared_sent = list(pool.map(into_shared, range(4)))

        with open_store(url=pg_url) as store:
            for conv_id, sent in conversations:
                messages = store.messages(conv_id)
                assert [m.seq for m in messages] == list(range(1, 7))
                assert [m.role for m in messages] == ["user", "assistant"] * 3
                assert [m.content for m in messages if m.role == "user"] == sent
                assert all(m.status == "ok" and m.content for m in messages)
            together = store.messages(shared)
            assert [m.seq for m in together] == list(range(1, 9))
            assert sorted(m.content for m in together if m.role == "user") == sorted(shared_sent)
            assert sum(m.role == "assistant" for m in together) == 4
        # Either replica reads what the other stored.
        first_id = conversations[0][0]
        assert len(clients[1].get(f"/v1/conversations/{first_id}").json()["messages"]) == 6
    finally:
        for s in servers:
            s.stop()
