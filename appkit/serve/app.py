"""The FastAPI application of `appkit serve`: routes, error shape, limits, metrics, access log, web page.

``create_app(runtime)`` builds it around loaded models (see runtime.py); ``appkit serve`` runs
it with uvicorn. OpenAPI docs are at ``/docs``. Every request passes ``Observe``: the body-size
limit (413), the Prometheus counters and one JSON access-log line (no message text unless
``log_bodies``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response

from appkit.serve import errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from appkit.serve.metrics import Metrics
    from appkit.serve.runtime import Runtime

access_log = logging.getLogger("appkit.serve.access")


def create_app(runtime: Runtime) -> FastAPI:
    """The HTTP application over ``runtime`` (which it closes when the server stops)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.staticfiles import StaticFiles

    from appkit.serve import app_routes, openai_routes
    from appkit.serve.access import Access
    from appkit.serve.metrics import Metrics

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # uvicorn has let running replies finish (up to shutdown_grace_s) and cancelled the rest;
        # wait for their threads to store them, then release the models and the database.
        await run_in_threadpool(runtime.close)
        logging.getLogger("appkit.serve").info("appkit serve: stopped")

    app = FastAPI(title="appkit", version="1", lifespan=lifespan,
                  description="OpenAI-compatible API and app routes over your own models.")
    metrics = Metrics(runtime)
    app.state.runtime, app.state.metrics, app.state.access = runtime, metrics, Access(runtime, metrics)
    errors.install(app)
    app.include_router(openai_routes.router)
    app.include_router(app_routes.router)
    static = files("appkit.serve") / "static"

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Models loaded and the database reachable")
    def readyz() -> JSONResponse:
        ready, details = runtime.readiness()
        return JSONResponse(details, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    if runtime.options.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(runtime.options.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Retry-After", "X-Request-Id"])
    app.add_middleware(Observe, metrics=metrics, max_body=runtime.options.max_body_bytes,
                       log_bodies=runtime.options.log_bodies)
    return app


class Observe:
    """ASGI middleware: refuse oversized bodies (413), count and time requests, log each one."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body: int, log_bodies: bool) -> None:
        self.app, self.metrics, self.max_body, self.log_bodies = app, metrics, max_body, log_bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        info: dict[str, Any] = scope.setdefault("appkit", {})
        seen = {"status": 500, "in": 0, "out": 0}
        too_big = errors.ApiError(413, f"the request body is larger than the server's limit of {self.max_body} bytes.",
                                  code="body_too_large")

        async def receive_limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["in"] += len(message.get("body", b""))
                if seen["in"] > self.max_body:
                    raise too_big
            return message

        async def send_watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body":
                seen["out"] += len(message.get("body", b""))
            await send(message)

        try:
            declared = dict(scope.get("headers") or ()).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await _send_error(send_watched, too_big)
            else:
                await self.app(scope, receive_limited, send_watched)
        finally:
            self._record(scope, info, seen, started, request_id)

    def _record(self, scope: Scope, info: dict[str, Any], seen: dict[str, int], started: float, request_id: str) -> None:
        seconds = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None) or ("/static" if scope["path"].startswith("/static/")
                                                               else "unmatched")
        self.metrics.requests.labels(route, scope["method"], str(seen["status"])).inc()
        self.metrics.latency.labels(route).observe(seconds)
        if seen["status"] == 429 and info.get("model"):
            self.metrics.rejected.labels("overloaded").inc()
        line: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "request_id": request_id,
            "method": scope["method"], "path": scope["path"], "route": route, "status": seen["status"],
            "ms": round(seconds * 1000, 1), "bytes_in": seen["in"], "bytes_out": seen["out"],
            "client": (scope.get("client") or ("-",))[0], "key": info.get("key", "-"),
        }
        for field in ("model", "ttft_ms", "completion_tokens"):
            if field in info:
                line[field] = info[field]
        if self.log_bodies and "messages" in info:
            line["messages"] = info["messages"]
        access_log.info(json.dumps(line, ensure_ascii=False))


async def _send_error(send: Send, error: errors.ApiError) -> None:
    body = json.dumps(errors.error_body(error.status_code, error.message, code=error.code)).encode()
    await send({"type": "http.response.start", "status": error.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def app_from_environment() -> FastAPI:
    """For ``--workers N``: each worker process loads the models named in APPKIT_SERVE_OPTIONS."""
    import os

    from appkit.config import load_settings
    from appkit.serve.options import ServeOptions
    from appkit.serve.runtime import Runtime
    from appkit.serve.server import configure_logging

    configure_logging()  # a fresh process: the parent's logging set-up is not inherited
    options = ServeOptions.from_json(os.environ["APPKIT_SERVE_OPTIONS"])
    return create_app(Runtime.load(load_settings(), options))
