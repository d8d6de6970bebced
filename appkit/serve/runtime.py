"""What a server has loaded: the apps and models clients can name, each with its admission gate.

A client names a model in the ``model`` field: an app (``support``, ``writer``; its prompts,
grounding and safety policy apply), ``sentiment`` (a classifier: ``/v1/sentiment``), or a
registered model served raw. Each has one Engine, shared by every request, and a Gate that
admits at most ``max_batch + max_queue`` replies at once: the next one is answered 429 with a
Retry-After at once, never left to hang.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appkit.errors import ConfigError, ModelError
from appkit.serve.errors import ApiError

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.engine import Engine
    from appkit.serve.options import ServeOptions
    from appkit.store import Store

CHAT_APPS = ("support", "writer")
SERVED_APPS = (*CHAT_APPS, "sentiment")
# How many concurrent classification requests /v1/sentiment takes (each is a whole batch).
SENTIMENT_CAPACITY = 8


class Gate:
    """At most ``capacity`` replies of one model at once; ``retry_after`` from recent reply times."""

    def __init__(self, capacity: int, parallel: int) -> None:
        self.capacity = capacity
        self.parallel = max(1, parallel)
        self.inside = 0
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=50)  # seconds of the latest replies

    def try_enter(self, n: int = 1) -> bool:
        with self._lock:
            if self.inside + n > self.capacity:
                return False
            self.inside += n
            return True

    def leave(self, n: int = 1, seconds: float | None = None) -> None:
        with self._lock:
            self.inside = max(0, self.inside - n)
            if seconds is not None:
                self._recent.append(seconds)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: a typical reply's time per batch of waiting replies."""
        with self._lock:
            typical = sorted(self._recent)[len(self._recent) // 2] if self._recent else 1.0
            waiting = max(0, self.inside - self.parallel)
        return int(min(60, max(1, math.ceil(typical * (1 + waiting / self.parallel)))))


@dataclass
class Served:
    """One name clients can use in ``model``."""

    id: str
    kind: str  # support | writer | sentiment | model
    target: Any  # SupportBot | Writer | SentimentAnalyzer | Engine
    model_name: str
    gate: Gate
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def engine(self) -> Engine | None:
        """The generating engine (None for the sentiment classifier)."""
        from appkit.engine import Engine

        return self.target if isinstance(self.target, Engine) else getattr(self.target, "engine", None)

    def admit(self, n: int = 1) -> None:
        """Take ``n`` places at the gate, or raise the 429 that says when to come back."""
        if not self.gate.try_enter(n):
            raise ApiError(429, f"model {self.id!r} is busy ({self.gate.capacity} replies running or waiting); "
                           "try again shortly.", code="overloaded", retry_after=self.gate.retry_after())


class Runtime:
    """The served apps and models, the store, the moderation policy and the threads that stream replies."""

    def __init__(self, settings: Settings, options: ServeOptions, served: dict[str, Served], store: Store) -> None:
        self.settings = settings
        self.options = options
        self.served = served
        self.store = store
        self._policy: Any = None
        self._policy_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings, options: ServeOptions, log: Callable[[str], None] = lambda _: None) -> Runtime:
        """Open the apps and models ``options`` name (default: every app with an active model).

        Raises:
            ModelError: a named app has no trained model, or a model cannot be found or loaded.
            ConfigError: an unknown app, or nothing to serve at all.
        """
        from appkit.apps import available_apps, load_app
        from appkit.store import open_store

        if settings.resolve_device() == "cpu":
            import torch

            torch.set_num_threads(options.cpu_threads())
        store = open_store(settings)
        served: dict[str, Served] = {}
        try:
            names = list(options.apps)
            if not names:
                names = [name for name in SERVED_APPS if name in available_apps() and store.active_model(name)]
            for name in names:
                if name not in SERVED_APPS:
                    raise ConfigError(f"--app {name}: appkit serve has routes for {', '.join(SERVED_APPS)}, not {name!r}.")
                log(f"loading app {name} ...")
                served[name] = cls._wrap(name, name, load_app(name, settings=settings), options)
            for model in options.models:
                served_id = cls._load_model(model, settings, options, served, log)
                log(f"loaded model {served_id}")
            if not served:
                raise ModelError("nothing to serve: no app has an active model. Train one (`appkit train-support "
                                 "--history tickets.csv`) or name a model with --model NAME.")
        except BaseException:
            for s in served.values():
                _close(s.target)
            store.close()
            raise
        return cls(settings, options, served, store)

    @staticmethod
    def _wrap(served_id: str, kind: str, target: Any, options: ServeOptions) -> Served:
        engine = getattr(target, "engine", None)
        if engine is not None:  # the server's bounds apply to the app's own engine
            engine.max_batch, engine.max_queue = options.max_batch, options.max_queue
        model_name = str(getattr(target, "model_name", None) or getattr(engine, "name", served_id))
        if kind == "sentiment":
            return Served(served_id, kind, target, model_name, Gate(SENTIMENT_CAPACITY, 1))
        return Served(served_id, kind, target, model_name, Gate(options.capacity, options.max_batch))

    @classmethod
    def _load_model(cls, model: str, settings: Settings, options: ServeOptions, served: dict[str, Served],
                    log: Callable[[str], None]) -> str:
        from appkit.engine import Engine
        from appkit.models import resolve_model_path

        name, path = resolve_model_path("", model, settings)
        if name in served:
            raise ConfigError(f"--model {model}: the name {name!r} is already served; serve it under one name only.")
        log(f"loading model {name} ...")
        engine = Engine.load(path, device=settings.resolve_device(), max_batch=options.max_batch,
                             max_queue=options.max_queue)
        engine.name = name
        served[name] = Served(name, "model", engine, name, Gate(options.capacity, options.max_batch))
        return name

    def get(self, model: str, *, kinds: tuple[str, ...] = ()) -> Served:
        """The served model called ``model`` (404 if none; 400 if it cannot do what is asked)."""
        served = self.served.get(model)
        if served is None:
            known = ", ".join(self.served) or "none"
            raise ApiError(404, f"the model {model!r} does not exist here; served: {known} (see GET /v1/models).",
                           code="model_not_found", param="model")
        if kinds and served.kind not in kinds:
            raise ApiError(400, f"{model!r} is the {served.kind} {'app' if served.kind != 'model' else 'model'} "
                           f"and cannot answer this request.", code="wrong_model", param="model")
        return served

    def find(self, kind: str) -> Served:
        """The served app of ``kind`` (404 naming the flag that serves it)."""
        for s in self.served.values():
            if s.kind == kind:
                return s
        raise ApiError(404, f"this server does not serve the {kind} app (start it with --app {kind}).",
                       code="app_not_served")

    def moderation_policy(self) -> Any:
        """The safety policy of /v1/moderations ([safety.apps.moderation] overrides apply), loaded once."""
        with self._policy_lock:
            if self._policy is None:
                from appkit.safety import load_policy

                self._policy = load_policy("moderation", self.settings)
            return self._policy

    # -- threads that run blocking generators -----------------------------------------------

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a thread that shutdown waits for (it may still be storing a reply)."""

        def run() -> None:
            try:
                target()
            finally:
                with self._threads_lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def wait_for_threads(self, timeout: float) -> int:
        """Join the streaming threads for up to ``timeout`` seconds; returns how many are still running."""
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in threads)

    # -- health --------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every model can take requests and the database answers, with the details."""
        from sqlalchemy import text

        models = {}
        for s in self.served.values():
            engine = s.engine
            models[s.id] = "closed" if engine is not None and engine.closed else "ok"
        try:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception as e:  # any failure to reach it means "not ready"
            database = f"unreachable: {' '.join(str(e).split())[:200]}"
        ready = database == "ok" and all(v == "ok" for v in models.values())
        return ready, {"ready": ready, "models": models, "database": database}

    def close(self, wait_s: float = 10.0) -> None:
        """Close every engine (cancelling what is left), let the streaming threads store what they
        produced (up to ``wait_s``), then close the apps and the store."""
        for s in self.served.values():
            if s.engine is not None:
                s.engine.close()
        self.wait_for_threads(wait_s)
        for s in self.served.values():
            _close(s.target)
        self.store.close()


def _close(target: Any) -> None:
    close = getattr(target, "close", None)
    if callable(close):
        close()
