"""A real `appkit serve` process on 127.0.0.1 (a random free port) over a home with nano models.

Each test module starts its own server once (module-scoped fixtures): the process loads torch
and the models in a few seconds, and every request in the module goes over loopback HTTP to it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.store.conftest import pg_server, pg_url  # noqa: F401 - PostgreSQL fixtures for the replica test

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class Server:
    """`python -m appkit serve` in a subprocess; its stderr is collected for assertions."""

    def __init__(self, home: Path, *args: str, database_url: str | None = None) -> None:
        self.home = home
        self.args = args
        self.env = {**os.environ, "APPKIT_HOME": str(home), "APPKIT_DEVICE": "cpu", "APPKIT_SAFETY_BACKEND": "lexicon",
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("APPKIT_DATABASE_URL", None)
        if database_url:
            self.env["APPKIT_DATABASE_URL"] = database_url
        self.url = ""
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 180) -> Server:
        self.proc = subprocess.Popen([sys.executable, "-m", "appkit", "serve", "--port", "0", *self.args],
                                     cwd=REPO, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or not self.url:
            self.stop()
            pytest.fail(f"appkit serve did not start:\n{self.stderr}", pytrace=False)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            m = LISTENING.search(line)
            if m:
                self.url = m.group(1)
                self._ready.set()
        self._ready.set()  # the process ended

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def access_log(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def openai(self, key: str | None = None, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or "no-key", max_retries=0, timeout=120, **kwargs)

    def http(self, key: str | None = None) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def register(home: Path, name: str, app: str, path: Path, database_url: str | None = None) -> None:
    """Register the model at ``path`` in ``home``'s store as ``app``'s active model."""
    from appkit.config import load_settings
    from appkit.store import open_store

    home.mkdir(parents=True, exist_ok=True)
    settings = load_settings(home=home, database_url=database_url)
    with open_store(settings, upgrade=True) as store:
        store.register_model(name, app, str(path), status="active", replace=True)


def wait_until(condition: Any, timeout: float = 30, what: str = "the condition") -> Any:
    """Poll ``condition()`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition ``text`` (0.0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture(scope="module")
def server_factory() -> Iterator[Any]:
    """Start servers that are stopped at the end of the module."""
    started: list[Server] = []

    def start(home: Path, *args: str, database_url: str | None = None) -> Server:
        server = Server(home, *args, database_url=database_url)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
