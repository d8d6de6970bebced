"""`appkit serve`: an OpenAI-compatible HTTP API, app routes, API keys, metrics and a web chat page.

    from appkit.serve import Runtime, ServeOptions, create_app
    runtime = Runtime.load(settings, ServeOptions(apps=("support",)))
    app = create_app(runtime)        # a FastAPI app; `appkit serve` runs it with uvicorn

Modules: options (settings), runtime (loaded models and their gates), access (keys, rate
limits), openai_routes, app_routes, generation (one chat reply), streaming (threads to SSE),
metrics (Prometheus), app (the FastAPI factory and middleware), server (bind and run), cli.
Names are imported lazily: importing appkit.serve loads neither FastAPI nor torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.serve.app import create_app
    from appkit.serve.options import ServeOptions, load_options
    from appkit.serve.runtime import Runtime

_EXPORTS = {
    "create_app": "appkit.serve.app",
    "ServeOptions": "appkit.serve.options",
    "load_options": "appkit.serve.options",
    "Runtime": "appkit.serve.runtime",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'appkit.serve' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
