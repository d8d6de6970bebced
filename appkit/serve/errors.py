"""Errors in OpenAI's shape, with the status an OpenAI client expects.

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": null}}

Every failure leaves the server as one of these: a bad field (400, naming it), a missing or
revoked key (401), a model or app the key may not use (403), something that does not exist
(404), a body too large (413), too many requests (429, with Retry-After), a model or database
that is not available (503). appkit's own errors map by kind; anything else is a 500 whose
details go to the log, never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException

from appkit.errors import (
    AppkitError,
    ConfigError,
    DataError,
    GenerationError,
    ModelError,
    NotFoundError,
    OverloadedError,
    SafetyError,
    StorageError,
    TemplateError,
)

log = logging.getLogger("appkit.serve")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error",
         503: "server_error"}


class ApiError(HTTPException):
    """An error answered in OpenAI's shape (an HTTPException, so FastAPI passes it through body parsing)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        super().__init__(status, message, headers=headers)
        self.message, self.code, self.param = message, code, param


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def from_appkit(error: AppkitError) -> ApiError:
    """The status and code an appkit error is answered with."""
    if isinstance(error, NotFoundError):
        return ApiError(404, str(error), code="not_found")
    if isinstance(error, OverloadedError):
        return ApiError(429, str(error), code="overloaded", retry_after=1)
    if isinstance(error, StorageError):
        return ApiError(503, str(error), code="database_unavailable")
    if isinstance(error, SafetyError):
        return ApiError(400, str(error), code="content_filter")
    if isinstance(error, (ConfigError, DataError, GenerationError, TemplateError)):
        return ApiError(400, str(error), code="invalid_request")
    if isinstance(error, ModelError):
        return ApiError(503, str(error), code="model_unavailable")
    return ApiError(500, str(error), code="appkit_error")


def stream_error(error: Exception) -> dict[str, Any]:
    """The error body for a failure after a stream has started (the status line is already sent)."""
    if isinstance(error, AppkitError):
        error = from_appkit(error)
    if not isinstance(error, ApiError):
        log.error("a streamed reply failed", exc_info=error)
        error = ApiError(500, "the reply failed; the details are in the server's log.", code="internal_error")
    return error_body(error.status_code, error.message, code=error.code)


def install(app: Any) -> None:
    """Register the handlers that turn every failure into OpenAI's error shape."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    from appkit.serve.streaming import ClientGone

    def respond(e: ApiError) -> JSONResponse:
        return JSONResponse(error_body(e.status_code, e.message, code=e.code, param=e.param), status_code=e.status_code,
                            headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_: Any, e: HTTPException) -> JSONResponse:
        if isinstance(e, ApiError):
            return respond(e)
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        return respond(ApiError(e.status_code, str(e.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Any, e: RequestValidationError) -> JSONResponse:
        return respond(validation_error(e.errors()))

    @app.exception_handler(ClientGone)
    async def gone(_: Any, e: ClientGone) -> Response:
        return Response(status_code=499)  # nginx's "client closed request": only the access log sees it

    @app.exception_handler(AppkitError)
    async def appkit_error(_: Any, e: AppkitError) -> JSONResponse:
        return respond(from_appkit(e))

    @app.exception_handler(Exception)
    async def unexpected(_: Any, e: Exception) -> JSONResponse:
        log.exception("unexpected error while answering a request")
        return respond(ApiError(500, "the server failed to answer this request; the details are in its log.",
                                code="internal_error"))


def validation_error(errors: Any) -> ApiError:
    """A 400 naming the first bad field (``messages[0].content``) and what was expected."""
    first = dict(errors[0]) if errors else {}
    loc = [p for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        return ApiError(400, f"the request body is not valid JSON ({ctx.get('error', 'parse error')}).",
                        code="invalid_json")
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    message = str(first.get("msg", "invalid request"))
    if first.get("type") == "missing":
        text = f"{param} is required." if param else "the request body is missing."
    else:
        given = first.get("input")
        shown = repr(given) if isinstance(given, (int, float, str, bool)) and len(repr(given)) < 60 else None
        text = f"{param or 'the request'}: {message}" + (f" (got {shown})" if shown else "") + "."
    return ApiError(400, text, code="invalid_request", param=param)
