"""Inference: load a model once, stream replies, batch concurrent requests continuously.

One worker thread owns the model. Requests wait in a queue (bounded when ``max_queue`` is
set: a full queue refuses new requests with an OverloadedError instead of letting them wait
without end). Between two decode steps the worker admits every waiting request there is room
for (up to ``max_batch`` rows): it prefills their prompts and merges them into the running
batch (appkit.engine.batch), so a new request waits one step, not until the replies already
running end. A row leaves the batch as soon as its reply ends. A small model on a CPU spends
most of a decode step on fixed per-call overhead, so 8 requests decoded together cost little
more than one (bench/generate.py and bench/serve.py measure it).

``close()`` cancels what is queued and running (each reply ends with finish_reason
``cancelled``), refuses new requests and returns within a bounded time.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.engine.batch import Row, RunningBatch
from appkit.engine.sampling import GenerationParams, apply_repetition_penalty, choose_tokens
from appkit.engine.scoring import ContinuationScore
from appkit.engine.text import TextStream
from appkit.errors import GenerationError, OverloadedError
from appkit.tokenizer import chat_control_ids, generation_prompt_ids

if TYPE_CHECKING:
    import torch

Messages = Sequence[dict[str, str]]
_DONE = object()
# How long close() waits for the worker to finish its current step before it ends the
# remaining replies itself (a step takes milliseconds on a small model).
CLOSE_TIMEOUT_S = 10.0


@dataclass
class ReplyStats:
    """Timing and size of one reply."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    finish_reason: str = ""  # end_of_turn | stop | length | cancelled | error
    logprob_sum: float = 0.0  # of the reply's tokens and its end-of-turn, under the raw model

    @property
    def mean_logprob(self) -> float | None:
        """Mean log-probability per generated token: low values mean the model was guessing."""
        n = self.completion_tokens + (self.finish_reason == "end_of_turn")
        return self.logprob_sum / n if n else None

    @property
    def tokens_per_second(self) -> float:
        """Decode speed after the first token."""
        if self.time_to_first_token_s is None or self.completion_tokens < 2:
            return 0.0
        return (self.completion_tokens - 1) / max(self.total_s - self.time_to_first_token_s, 1e-9)


@dataclass
class Reply:
    """A finished reply."""

    text: str
    stats: ReplyStats


class ReplyStream:
    """An iterator of text pieces; ``.stats`` and ``.text`` are complete once it is exhausted."""

    def __init__(self, request: _Request) -> None:
        self._request = request
        self.stats = request.stats
        self._parts: list[str] = []

    def __iter__(self) -> Iterator[str]:
        try:
            while True:
                item = self._request.out.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                self._parts.append(item)
                yield item
        finally:
            # The consumer stopped early (break, close, garbage collection): stop generating.
            if self.stats.finish_reason == "":
                self._request.cancelled.set()

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def done(self) -> bool:
        """Whether the reply has ended (finished, stopped, cancelled or failed)."""
        return self._request.finished

    def cancel(self) -> None:
        """Stop generating; the iterator ends after the pieces already produced."""
        self._request.cancelled.set()

    def set_waker(self, waker: Callable[[], None]) -> None:
        """For a consumer that does not block on the iterator (an event loop): ``waker()`` is called
        from the engine's thread whenever :meth:`poll` has something new, once now if it already has."""
        self._request.waker = waker
        if not self._request.out.empty():
            waker()

    def poll(self) -> tuple[list[str], bool]:
        """The pieces produced since the last call, without waiting, and whether the reply has ended.

        Raises:
            GenerationError: the generation failed.
        """
        pieces: list[str] = []
        while True:
            try:
                item = self._request.out.get_nowait()
            except queue.Empty:
                return pieces, False
            if item is _DONE:
                return pieces, True
            if isinstance(item, BaseException):
                raise item
            self._parts.append(item)
            pieces.append(item)


@dataclass
class _Request:
    prompt: list[int]
    params: GenerationParams
    out: queue.Queue[Any] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    stats: ReplyStats = field(default_factory=ReplyStats)
    submitted: float = field(default_factory=time.perf_counter)
    finished: bool = False  # _DONE was sent; set once, under Engine._finish_lock
    waker: Callable[[], None] | None = None  # called after each item (an async consumer's wake-up)

    def emit(self, item: Any) -> None:
        self.out.put(item)
        waker = self.waker
        if waker is not None:
            waker()


def cache_kwarg(model: Any) -> str:
    """The name ``model.forward`` takes its KV cache by: ``cache`` since transformers 5.24 (where
    ``past_key_values`` still works but warns on every call), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


class Engine:
    """Streams replies from one loaded causal LM.

    Args:
        max_batch: the most replies decoded together.
        max_queue: the most requests waiting for a place in the batch; one more is refused with
            OverloadedError. None: no bound (a library user's own threads).
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "", max_batch: int = 16,
                 max_queue: int | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.gather_s = 0.005
        self.metadata = metadata or {}
        self.device = next(model.parameters()).device
        self._cache_kwarg = cache_kwarg(model)
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        # Stop on end-of-turn, on what the model's generation config stops on (a base's own eos),
        # and on the chat template's role and header tokens (a model must never speak for the user).
        stops = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        stop_tokens = {tokenizer.eos_token_id, *chat_control_ids(tokenizer),
                       *(stops if isinstance(stops, list) else [stops])}
        self.stop_ids = frozenset(t for t in stop_tokens if t is not None)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # Called from the worker with the number of rows of every decode step (a server's metrics).
        self.on_step: Callable[[int], None] | None = None
        self._pending: deque[_Request] = deque()
        self._cond = threading.Condition()  # guards _pending, _closed and the worker's start
        self._finish_lock = threading.Lock()
        self._running: list[_Request] = []  # the worker's batch, readable by close()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()  # the model: the worker's steps and mean_logprob take turns
        self._closed = False

    @classmethod
    def load(cls, model_dir: str | Path, *, device: str = "cpu", max_batch: int = 16,
             max_queue: int | None = None) -> Engine:
        """Load a saved model directory (appkit's or any HF causal LM with a chat template)."""
        import torch

        from appkit.model.io import load_model

        dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        model, tokenizer, meta = load_model(model_dir, device=device, dtype=dtype)
        return cls(model, tokenizer, name=Path(model_dir).name, max_batch=max_batch, max_queue=max_queue,
                   metadata=meta)

    # -- public API ----------------------------------------------------------------------------

    def prompt_ids(self, messages: Messages) -> list[int]:
        """Token ids the model sees for ``messages`` (ending with the assistant prompt)."""
        return generation_prompt_ids(self.tokenizer, messages)

    def check_fits(self, messages: Messages) -> list[int]:
        """The prompt ids of ``messages``, or GenerationError when no reply fits after them."""
        prompt = self.prompt_ids(messages)
        if len(prompt) >= self.context_length:
            raise GenerationError(
                f"the conversation is {len(prompt)} tokens long and the model's context holds "
                f"{self.context_length}: shorten the message or start a new conversation."
            )
        return prompt

    def stream(self, messages: Messages, params: GenerationParams | None = None) -> ReplyStream:
        """Start generating a reply to ``messages``; iterate the result for text pieces.

        Raises:
            GenerationError: the prompt does not leave room for a reply in the context window,
                or the engine was closed.
            OverloadedError: ``max_queue`` requests are already waiting.
        """
        submitted = time.perf_counter()
        params = params or GenerationParams()
        prompt = self.check_fits(messages)
        room = self.context_length - len(prompt)
        if params.max_new_tokens > room:
            from dataclasses import replace

            params = replace(params, max_new_tokens=room, min_new_tokens=min(params.min_new_tokens, room))
        request = _Request(prompt, params, submitted=submitted)
        request.stats.prompt_tokens = len(prompt)
        with self._cond:
            if self._closed:
                raise GenerationError(f"the engine of model {self.name!r} is closed: it takes no new requests.")
            if self.max_queue is not None and self._waiting() >= self.max_queue:
                raise OverloadedError(f"model {self.name!r} is busy: {self.max_queue} requests are already "
                                      "waiting; try again shortly.")
            self._ensure_worker()
            self._pending.append(request)
            self._cond.notify_all()
        return ReplyStream(request)

    def reply(self, messages: Messages, params: GenerationParams | None = None) -> Reply:
        """Generate a whole reply."""
        stream = self.stream(messages, params)
        text = "".join(stream)
        return Reply(text.strip(), stream.stats)

    def score(self, messages: Messages, replies: Sequence[str]) -> list[ContinuationScore]:
        """How likely the model finds each of ``replies`` (ended by end-of-turn) after ``messages``.

        One batched pass over the shared prompt (appkit.engine.scoring); a reply that would not
        fit in the context is cut to what fits. Takes turns with generation on the model.
        """
        from appkit.engine.scoring import score_continuations
        from appkit.tokenizer import end_of_turn_id

        prompt = self.prompt_ids(messages)
        end = end_of_turn_id(self.tokenizer)
        room = max(self.context_length - len(prompt), 0)
        targets = [(self.tokenizer.encode(r, add_special_tokens=False) + [end])[:room] for r in replies]
        with self._lock:
            return score_continuations(self.model, prompt, targets, cache_kwarg=self._cache_kwarg)

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a place in the batch."""
        with self._cond:
            return self._waiting()

    @property
    def running(self) -> int:
        """Replies being generated now."""
        return len(self._running)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Cancel every queued and running reply, refuse new ones, and stop the worker.

        Each cancelled reply ends with finish_reason ``cancelled`` (its consumer sees the end of
        the stream). Returns within about ``timeout`` seconds even if a model step hangs.
        """
        with self._cond:
            self._closed = True
            waiting = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for r in waiting:
            self._finish(r, "cancelled")
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=timeout)
        for r in list(self._running):  # the worker is stuck in a step: end its replies from here
            self._finish(r, "cancelled")

    # -- the worker ----------------------------------------------------------------------------

    def _waiting(self) -> int:
        """Requests queued and not cancelled (call under ``_cond``)."""
        while self._pending and self._pending[0].cancelled.is_set():
            self._finish(self._pending.popleft(), "cancelled")
        return sum(not r.cancelled.is_set() for r in self._pending)

    def _ensure_worker(self) -> None:
        """Start the worker thread if it is not running (call under ``_cond``)."""
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._serve, name=f"appkit-engine-{self.name}", daemon=True)
            self._worker.start()
            # A script may end without close() while a reply is still being generated; a daemon
            # thread left inside torch's parallel code at exit aborts the process ("terminate called
            # without an active exception", exit 134), so stop it first. Weak: no engine is kept alive.
            atexit.register(_close_at_exit, weakref.ref(self))

    def _take(self, idle: bool) -> list[_Request] | None:
        """Requests to admit now (None once closed). When idle, wait for one, then a moment for more."""
        with self._cond:
            if idle:
                while not self._pending and not self._closed:
                    self._cond.wait()
                # Requests that arrive together (8 users pressing enter, a thread pool) are prefilled
                # as one batch if the first waits a moment (a few ms, under one decode step) for the rest.
                deadline = time.perf_counter() + self.gather_s
                while not self._closed and len(self._pending) < self.max_batch:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if self._closed:
                return None
            taken: list[_Request] = []
            while self._pending and len(self._running) + len(taken) < self.max_batch:
                r = self._pending.popleft()
                if r.cancelled.is_set():
                    self._finish(r, "cancelled")
                else:
                    taken.append(r)
            return taken

    def _serve(self) -> None:
        import torch

        batch = RunningBatch(self.model, self._cache_kwarg)
        while True:
            group = self._take(idle=not batch.rows)
            if group is None:
                break
            try:
                with torch.inference_mode(), _attention_kernels(self.device):
                    if group:
                        self._running.extend(group)
                        batch.extend(self._prefill(group))
                    if batch.rows:
                        with self._lock:
                            logits = batch.step()
                        if self.on_step is not None:
                            self.on_step(len(batch.rows))
                        self._sample(batch, logits)
            except Exception as e:  # never leave a consumer waiting forever
                for r in self._running:
                    self._fail(r, e)
                batch = RunningBatch(self.model, self._cache_kwarg)
            self._running = [row.request for row in batch.rows]
        for row in batch.rows:  # closed: end what is still running
            self._finish(row.request, "cancelled")
        self._running = []

    def _prefill(self, group: list[_Request]) -> RunningBatch:
        """Prefill ``group`` together and sample each one's first token; returns the rows still going."""
        # The repetition penalty counts the reply's own tokens only: penalising the prompt's would
        # punish the very words a reply should take up (a product name, the customer's wording).
        rows = [Row(r, TextStream(self.tokenizer, r.params.stop), self._generator(r.params),
                    _tensor([], self.device)) for r in group]
        with self._lock:
            joined, logits = RunningBatch.prefill(self.model, self._cache_kwarg, rows, self.pad_id, self.device)
        self._sample(joined, logits)
        return joined

    def _sample(self, batch: RunningBatch, logits: torch.Tensor) -> None:
        """Choose each row's next token from its logits (n, V); drop the rows that end.

        Rows that sample alike (same temperature, top-p, top-k, no seed) are sampled together;
        a seeded row draws from its own generator, so its reply does not depend on its batch.
        """
        import torch

        scores = self._adjusted(batch, logits)
        groups: dict[Any, list[int]] = {}
        for i, row in enumerate(batch.rows):
            p = row.request.params
            key = "greedy" if p.greedy else ("seeded", i) if row.generator is not None else (
                p.temperature, p.top_p, p.top_k)
            groups.setdefault(key, []).append(i)
        tokens = [0] * len(batch.rows)
        for key, rows in groups.items():
            first = batch.rows[rows[0]]
            picked = choose_tokens(scores[rows], first.request.params, first.generator)
            for i, token in zip(rows, picked):
                tokens[i] = token
        # Each chosen token's log-probability under the raw model, for confidence: log softmax at one index.
        raw = logits.float()
        picked = raw.gather(1, torch.tensor(tokens, device=raw.device)[:, None]).squeeze(1)
        chosen = (picked - torch.logsumexp(raw, dim=-1)).tolist()
        kept: list[int] = []
        for i, row in enumerate(batch.rows):
            r, token = row.request, tokens[i]
            r.stats.logprob_sum += chosen[i]
            if self._advance(r, row.text, token):
                kept.append(i)
                row.token = token
                if r.params.repetition_penalty != 1.0:
                    row.seen = torch.cat([row.seen, _tensor([token], self.device)])
        batch.keep(kept)

    def _adjusted(self, batch: RunningBatch, logits: torch.Tensor) -> torch.Tensor:
        """The logits after each row's repetition penalty and its ban on stopping too early."""
        import torch

        rows = [(i, row) for i, row in enumerate(batch.rows)
                if row.request.params.repetition_penalty != 1.0
                or row.request.stats.completion_tokens < row.request.params.min_new_tokens]
        if not rows:
            return logits
        scores = logits.clone()
        stop_ids = torch.tensor(sorted(self.stop_ids), device=self.device)
        for i, row in rows:
            r = row.request
            scores[i] = apply_repetition_penalty(logits[i], row.seen, r.params.repetition_penalty)
            if r.stats.completion_tokens < r.params.min_new_tokens:
                scores[i] = scores[i].index_fill(0, stop_ids, float("-inf"))  # too early to stop
        return scores

    def _advance(self, r: _Request, text: TextStream, token: int) -> bool:
        """Account for one sampled token; return whether ``r`` keeps generating."""
        now = time.perf_counter()
        stats = r.stats
        if r.cancelled.is_set() or self._closed:
            return self._end(r, text, "cancelled", now)
        if token in self.stop_ids:
            return self._end(r, text, "end_of_turn", now)
        stats.completion_tokens += 1
        if stats.time_to_first_token_s is None:
            stats.time_to_first_token_s = now - r.submitted
        piece = text.push(token)
        if piece:
            r.emit(piece)
        if text.stopped:
            return self._end(r, text, "stop", now)
        if stats.completion_tokens >= r.params.max_new_tokens:
            return self._end(r, text, "length", now)
        return True

    def _end(self, r: _Request, text: TextStream, reason: str, now: float) -> bool:
        if reason != "cancelled":
            rest = text.finish()
            if rest:
                r.emit(rest)
        if r.stats.time_to_first_token_s is None:
            r.stats.time_to_first_token_s = now - r.submitted
        self._finish(r, reason, now)
        return False

    def _finish(self, r: _Request, reason: str, now: float | None = None) -> None:
        """End ``r`` once: set its finish reason and wake its consumer."""
        with self._finish_lock:
            if r.finished:
                return
            r.finished = True
            r.stats.total_s = (now or time.perf_counter()) - r.submitted
            r.stats.finish_reason = reason
            r.emit(_DONE)

    def _fail(self, r: _Request, error: Exception) -> None:
        with self._finish_lock:
            if r.finished:
                return
            r.stats.finish_reason = "error"
            r.finished = True
            r.emit(GenerationError(f"generation failed: {error}"))
            r.emit(_DONE)

    def _generator(self, params: GenerationParams) -> torch.Generator | None:
        import torch

        if params.greedy or params.seed is None:
            return None  # unseeded rows draw from torch's own generator, together
        g = torch.Generator(device=self.device)
        g.manual_seed(params.seed)
        return g

    def describe(self) -> dict[str, Any]:
        """Name, size and device, for status bars and `appkit models list`."""
        from appkit.model.build import count_parameters

        return {"name": self.name, "parameters": count_parameters(self.model), "device": str(self.device),
                "context_length": self.context_length}


def _attention_kernels(device: Any) -> Any:
    """SDPA kernels for decoding: not cuDNN's on CUDA.

    Measured on an H100 (torch 2.11): with cuDNN attention a batch-8 decode step on a new KV
    length took 65-70 ms instead of 3-4 ms, and 8 concurrent requests ran at 0.6x batch 1;
    without it, 3.4x. Flash and memory-efficient kernels stay allowed.
    """
    from contextlib import nullcontext

    if getattr(device, "type", "cpu") != "cuda":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _tensor(ids: list[int], device: Any) -> torch.Tensor:
    import torch

    return torch.tensor(ids, dtype=torch.long, device=device)


def _close_at_exit(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()
