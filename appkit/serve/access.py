"""Who is calling: API keys (``Authorization: Bearer ak-...``), their scopes and rate limits.

While no live key exists, a server that listens on this machine only (127.0.0.1, the default)
answers without one, like a local development server. Once a key exists (`appkit keys create`
works while the server runs), every /v1 request needs one. A server listening on any other
address always needs one (and refuses to start before one exists).

Rate limits are per key and per server process (a token bucket: ``rate_per_minute`` requests
a minute, in bursts of up to that many): N replicas behind a load balancer let a key through N
times as often. Health, readiness, metrics and the web page need no key.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from appkit.serve.errors import ApiError

if TYPE_CHECKING:
    from appkit.serve.metrics import Metrics
    from appkit.serve.runtime import Runtime
    from appkit.store import ApiKeyRecord


@dataclass(frozen=True)
class Caller:
    """The key a request came with (None on an open local server)."""

    key: ApiKeyRecord | None

    @property
    def name(self) -> str:
        return self.key.name if self.key is not None else "-"

    def check_scope(self, model: str) -> None:
        """403 unless this key may use ``model`` (an app or a model name)."""
        if self.key is not None and not self.key.allows(model):
            allowed = ", ".join(self.key.apps or ())
            raise ApiError(403, f"the key {self.key.name!r} may not use {model!r} (it may use: {allowed}).",
                           code="model_not_allowed", param="model")

    def can_see(self, owner_key_id: int | None) -> bool:
        """Whether this caller may read a conversation created by key ``owner_key_id``."""
        return self.key is None or owner_key_id == self.key.id


class RateLimiter:
    """A token bucket per key: ``rate`` requests a minute, bursts of up to ``rate``."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, time)
        self._lock = threading.Lock()

    def take(self, key_id: int, rate: int) -> float:
        """Spend one request; 0.0 if allowed, else the seconds until the next one is."""
        now = time.monotonic()
        per_second = rate / 60.0
        with self._lock:
            tokens, then = self._buckets.get(key_id, (float(rate), now))
            tokens = min(float(rate), tokens + (now - then) * per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / per_second


class Access:
    """Authenticates requests against the store's keys and applies their rate limits."""

    def __init__(self, runtime: Runtime, metrics: Metrics) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.limiter = RateLimiter()

    def authenticate(self, request: Request) -> Caller:
        """The caller of ``request``; 401 without a valid key where one is needed, 429 over its rate."""
        store = self.runtime.store
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            if self.runtime.options.loopback and not store.has_api_keys():
                return Caller(None)
            raise ApiError(401, "this server needs an API key: send 'Authorization: Bearer <key>' "
                           "(create one with `appkit keys create --name NAME`).", code="missing_api_key")
        key = store.find_api_key(token)
        if key is None:
            if self.runtime.options.loopback and not store.has_api_keys():
                return Caller(None)  # an open local server: a stray header changes nothing
            raise ApiError(401, "the API key is not valid (unknown or revoked).", code="invalid_api_key")
        wait = self.limiter.take(key.id, key.rate_per_minute)
        request.scope.setdefault("appkit", {})["key"] = key.name
        if wait > 0:
            self.metrics.rejected.labels("rate_limited").inc()
            raise ApiError(429, f"the key {key.name!r} is over its rate limit of {key.rate_per_minute} requests a "
                           "minute.", code="rate_limit_exceeded", retry_after=max(1, math.ceil(wait)))
        return Caller(key)


def current_caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller of a /v1 request."""
    return request.app.state.access.authenticate(request)
