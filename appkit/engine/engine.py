"""Inference: load a model once, stream replies, batch concurrent requests.

One worker thread owns the model. Requests queue up; the worker takes every waiting request
(up to ``max_batch``) as one batch, left-pads the prompts, prefills them together and decodes
all of them step by step with one KV cache, dropping each sequence from the cache as soon as
it finishes. A small model on a CPU spends most of a decode step on fixed per-call overhead,
so 8 requests decoded together cost little more than one (bench/generate.py measures it).
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.engine.sampling import GenerationParams, apply_repetition_penalty, choose_token
from appkit.engine.text import TextStream
from appkit.errors import GenerationError
from appkit.tokenizer import ROLE_TOKENS, generation_prompt_ids

if TYPE_CHECKING:
    import torch

Messages = Sequence[dict[str, str]]
_DONE = object()


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

    def cancel(self) -> None:
        """Stop generating; the iterator ends after the pieces already produced."""
        self._request.cancelled.set()


@dataclass
class _Request:
    prompt: list[int]
    params: GenerationParams
    out: queue.Queue[Any] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    stats: ReplyStats = field(default_factory=ReplyStats)
    submitted: float = field(default_factory=time.perf_counter)


def cache_kwarg(model: Any) -> str:
    """The name ``model.forward`` takes its KV cache by: ``cache`` since transformers 5.24 (where
    ``past_key_values`` still works but warns on every call), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


class Engine:
    """Streams replies from one loaded causal LM."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "", max_batch: int = 16,
                 metadata: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_batch = max_batch
        self.gather_s = 0.005
        self.metadata = metadata or {}
        self.device = next(model.parameters()).device
        self._cache_kwarg = cache_kwarg(model)
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        vocab = tokenizer.get_vocab()
        # Stop on end-of-turn and on any role token (a model must never speak for the user).
        stop_tokens = {tokenizer.eos_token_id, *(vocab[t] for t in ROLE_TOKENS.values() if t in vocab)}
        self.stop_ids = frozenset(t for t in stop_tokens if t is not None)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()  # requests from many threads must start one worker, not one each
        self._closed = False

    @classmethod
    def load(cls, model_dir: str | Path, *, device: str = "cpu", max_batch: int = 16) -> Engine:
        """Load a saved model directory (appkit's or any HF causal LM with a chat template)."""
        import torch

        from appkit.model.io import load_model

        dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        model, tokenizer, meta = load_model(model_dir, device=device, dtype=dtype)
        return cls(model, tokenizer, name=Path(model_dir).name, max_batch=max_batch, metadata=meta)

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
            GenerationError: the prompt does not leave room for a reply in the context window.
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
        self._ensure_worker()
        self._queue.put(request)
        return ReplyStream(request)

    def reply(self, messages: Messages, params: GenerationParams | None = None) -> Reply:
        """Generate a whole reply."""
        stream = self.stream(messages, params)
        text = "".join(stream)
        return Reply(text.strip(), stream.stats)

    def mean_logprob(self, messages: Messages, reply: str) -> float:
        """Mean log-probability per token of ``reply`` after ``messages`` (a confidence signal)."""
        import torch

        prompt = self.prompt_ids(messages)
        target = self.tokenizer.encode(reply, add_special_tokens=False) + [self.tokenizer.eos_token_id]
        ids = (prompt + target)[-self.context_length :]
        n = min(len(target), len(ids) - 1)
        with self._lock, torch.inference_mode():
            logits = self.model(torch.tensor([ids], device=self.device)).logits[0, -n - 1 : -1].float()
        logp = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[-n:], device=self.device)[:, None])
        return float(logp.mean())

    def close(self) -> None:
        """Stop the worker thread (pending requests are cancelled)."""
        self._closed = True
        if self._worker is not None:
            self._queue.put(None)  # type: ignore[arg-type]
            self._worker.join(timeout=5)

    # -- the worker ----------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._closed:
            raise GenerationError("this engine was closed; load the model again.")
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name=f"appkit-engine-{self.name}", daemon=True)
                self._worker.start()
                # A script may end without close() while a reply is still being generated; a daemon
                # thread left inside torch's parallel code at exit aborts the process ("terminate called
                # without an active exception", exit 134), so stop it first. Weak: no engine is kept alive.
                atexit.register(_close_at_exit, weakref.ref(self))

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            # Requests that arrive together (8 users pressing enter, a thread pool) would otherwise
            # be split into a batch of 1 and a batch of 7 that waits for it: give latecomers a
            # moment (a few ms, under one decode step) to join. bench/generate.py measures it.
            deadline = time.perf_counter() + self.gather_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # type: ignore[arg-type]
                    break
                batch.append(nxt)
            batch = [r for r in batch if not self._finish_if_cancelled(r)]
            if not batch:
                continue
            try:
                with self._lock:
                    self._generate(batch)
            except Exception as e:  # never leave a consumer waiting forever
                for r in batch:
                    if not r.stats.finish_reason:
                        r.stats.finish_reason = "error"
                        r.out.put(GenerationError(f"generation failed: {e}"))
                        r.out.put(_DONE)

    def _finish_if_cancelled(self, r: _Request) -> bool:
        if r.cancelled.is_set():
            r.stats.finish_reason = "cancelled"
            r.out.put(_DONE)
            return True
        return False

    def _generate(self, batch: list[_Request]) -> None:
        import torch
        from transformers import DynamicCache

        n = len(batch)
        width = max(len(r.prompt) for r in batch)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(batch):
            ids[i, width - len(r.prompt) :] = torch.tensor(r.prompt)  # left padding
            mask[i, width - len(r.prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (n, width)
        generators = [self._generator(r.params) for r in batch]
        texts = [TextStream(self.tokenizer, r.params.stop) for r in batch]
        seen = [torch.tensor(r.prompt, device=self.device) for r in batch]
        stop_ids = torch.tensor(sorted(self.stop_ids), device=self.device)
        active = list(range(n))  # batch rows still generating, in cache order
        cache = DynamicCache()
        step_ids, step_pos = ids, positions
        with torch.inference_mode(), _attention_kernels(self.device):
            while active:
                # A full (n, T) mask only when the batch has padding; a single prompt needs none.
                attn = mask if bool((mask == 0).any()) else None
                logits = self.model(input_ids=step_ids, attention_mask=attn, position_ids=step_pos,
                                    use_cache=True, logits_to_keep=1, **{self._cache_kwarg: cache}).logits[:, -1, :]
                logprobs = torch.log_softmax(logits.float(), dim=-1)  # (n_active, V), for confidence
                next_ids: list[int] = []
                keep: list[int] = []
                for row, i in enumerate(active):
                    r = batch[i]
                    scores = apply_repetition_penalty(logits[row], seen[i], r.params.repetition_penalty)
                    if r.stats.completion_tokens < r.params.min_new_tokens:
                        scores = scores.index_fill(0, stop_ids, float("-inf"))  # too early to stop
                    token = choose_token(scores, r.params, generators[i])
                    r.stats.logprob_sum += float(logprobs[row, token])
                    if self._advance(r, texts[i], token):
                        keep.append(row)
                        next_ids.append(token)
                        seen[i] = torch.cat([seen[i], torch.tensor([token], device=self.device)])
                if len(keep) < len(active):
                    if not keep:
                        break
                    index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(index)
                    mask, step_pos = mask[index], step_pos[index]
                    active = [active[row] for row in keep]
                step_ids = torch.tensor(next_ids, device=self.device)[:, None]
                step_pos = step_pos[:, -1:] + 1
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=self.device)], dim=1)

    def _advance(self, r: _Request, text: TextStream, token: int) -> bool:
        """Account for one sampled token; return whether ``r`` keeps generating."""
        now = time.perf_counter()
        stats = r.stats
        if r.cancelled.is_set():
            return self._end(r, text, "cancelled", now)
        if token in self.stop_ids:
            return self._end(r, text, "end_of_turn", now)
        stats.completion_tokens += 1
        if stats.time_to_first_token_s is None:
            stats.time_to_first_token_s = now - r.submitted
        piece = text.push(token)
        if piece:
            r.out.put(piece)
        if text.stopped:
            return self._end(r, text, "stop", now)
        if stats.completion_tokens >= r.params.max_new_tokens:
            return self._end(r, text, "length", now)
        return True

    def _end(self, r: _Request, text: TextStream, reason: str, now: float) -> bool:
        if reason != "cancelled":
            rest = text.finish()
            if rest:
                r.out.put(rest)
        if r.stats.time_to_first_token_s is None:
            r.stats.time_to_first_token_s = now - r.submitted
        r.stats.total_s = now - r.submitted
        r.stats.finish_reason = reason
        r.out.put(_DONE)
        return False

    def _generator(self, params: GenerationParams) -> torch.Generator | None:
        import torch

        if params.greedy:
            return None
        g = torch.Generator(device=self.device)
        g.manual_seed(params.seed if params.seed is not None else int(time.time_ns() % 2**63))
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


def _close_at_exit(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()
