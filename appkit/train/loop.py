"""The training loop, readable top to bottom.

One code path for CPU and GPU: bf16 autocast on CUDA, fp32 elsewhere; AdamW (fused on CUDA)
with warmup + cosine decay; gradient clipping; periodic validation with early stopping;
atomic checkpoints (SIGINT saves one before stopping) and exact resume; step, epoch and
wall-clock budgets; DDP when launched by torchrun. Only rank 0 writes files or prints.
"""

from __future__ import annotations

import math
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import CheckpointError, TrainingError
from appkit.train import checkpoint
from appkit.train.distributed import DistContext, all_reduce_sum, barrier, broadcast_flag, init
from appkit.train.report import MetricsLog, plot_loss

if TYPE_CHECKING:
    import torch

    from appkit.train.packing import Batch, PackedDataset


@dataclass
class TrainConfig:
    """Hyper-parameters and budgets of one run."""

    batch_size: int = 8  # rows per step per process
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decays to this share of the peak
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    epochs: float = 10.0
    max_steps: int | None = None
    max_minutes: float | None = None
    eval_every: int | None = None  # steps; None -> about 10 evaluations per run
    patience: int = 3  # evaluations without improvement before stopping early
    checkpoint_minutes: float = 2.0  # also checkpoint at every evaluation
    log_every: int = 5
    compile: bool = False
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


@dataclass
class TrainState:
    """Everything besides weights and optimizer moments that a resume needs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_val_loss: float = math.inf
    evals_since_best: int = 0
    total_steps: int = 0


@dataclass
class TrainResult:
    """What a run did and reached."""

    steps: int
    epochs: float
    tokens_seen: int
    seconds: float
    tokens_per_second: float
    best_val_loss: float | None
    val_perplexity: float | None
    stopped: str  # epochs | max_steps | max_minutes | early_stop | interrupted
    padding_fraction: float
    final_loss: float | None = None  # the last step's loss, averaged over all processes
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("history")
        return d


class TrainingInterrupted(TrainingError):
    """Training stopped on SIGINT after saving a checkpoint."""

    exit_code = 130


VALIDATION_SHARE = 0.1  # the most of the training time that periodic validation may take


def eval_interval(total_steps: int, cfg: TrainConfig, *, step_s: float | None = None,
                  val_s: float | None = None) -> int:
    """Steps between validations: about 10 per run, but never more than a tenth of the time.

    Once a validation has been timed (``val_s``) against a training step (``step_s``), the
    interval grows until validating costs at most VALIDATION_SHARE of training: a 10% split
    of a large corpus under a short budget otherwise eats the budget (pretraining on SST-2 and
    Shakespeare for 2 CPU minutes validated 5 times at ~11 s each, 40% of the run).
    """
    if cfg.eval_every:
        return cfg.eval_every
    every = max(10, total_steps // 10)
    if step_s and val_s:
        every = max(every, math.ceil(val_s / (VALIDATION_SHARE * step_s)))
    return every


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warmup to the peak, then cosine decay to ``min_lr_ratio`` of it at ``total``."""
    peak = cfg.learning_rate
    warmup = min(cfg.warmup_steps, max(1, total // 10))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = peak * cfg.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not norms or biases); fused kernels on CUDA."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.95), fused=device.type == "cuda")


class _StopOnSigint:
    """First Ctrl-C asks the loop to checkpoint and stop; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopOnSigint:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. inside a TUI worker): no handler
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Trains ``model`` on packed rows; ``run()`` returns a ``TrainResult``."""

    def __init__(
        self,
        model: torch.nn.Module,
        train_data: PackedDataset,
        val_data: PackedDataset | None,
        cfg: TrainConfig,
        run_dir: Path,
    ) -> None:
        import torch

        if not train_data.rows:
            raise TrainingError("nothing to train on: no conversation has an assistant reply after curation.")
        self.cfg = cfg
        self.run_dir = run_dir
        self.dist = DistContext.from_env()
        device = cfg.device
        if self.dist.enabled and device.startswith("cuda"):
            device = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(device)
        init(self.dist, device)
        self.model = model.to(self.device)
        self.train_data = train_data
        self.val_data = val_data
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.state = TrainState()
        self.metrics: MetricsLog | None = None
        # bf16 autocast on CUDA; on CPU autocast is disabled so the same code runs in fp32.
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        )
        self.forward_model: Any = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.forward_model = DistributedDataParallel(self.model)
        if cfg.compile:
            self.forward_model = torch.compile(self.forward_model)

    # -- checkpoints -------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.run_dir / checkpoint.STATE_FILE

    @property
    def best_path(self) -> Path:
        return self.run_dir / checkpoint.BEST_FILE

    def save_checkpoint(self) -> None:
        """Write weights, optimizer moments and loop state (rank 0 only)."""
        if self.dist.is_main:
            payload = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "state": asdict(self.state),
                "config": asdict(self.cfg),
            }
            checkpoint.save_atomic(payload, self.state_path)
        barrier(self.dist)

    def resume(self) -> None:
        """Continue from the checkpoint in ``run_dir``: same weights, moments, data position."""
        payload = checkpoint.load(self.state_path)
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"{self.state_path}: the checkpoint does not match this model ({str(e)[:200]}). "
                "Run without --resume, or with the same settings as the interrupted run."
            ) from None
        self.state = TrainState(**payload["state"])

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self) -> float | None:
        """Mean validation loss per target token over all processes (None without validation data)."""
        import torch

        if self.val_data is None or not self.val_data.rows:
            return None
        self.model.eval()
        total, count = 0.0, 0
        with torch.inference_mode(), self.autocast:
            for batch in self.val_data.epoch(0, self.cfg.batch_size, seed=0, shuffle=False,
                                             rank=self.dist.rank, world=self.dist.world):
                out = self.model(**self._inputs(batch), num_items_in_batch=1)  # loss = sum over targets
                total += float(out.loss)
                count += batch.n_target_tokens
        self.model.train()
        total, count = all_reduce_sum(self.dist, [total, float(count)], self.device)
        return total / count if count else None  # no target token: no figure, not a perfect 0

    def _inputs(self, batch: Batch) -> dict[str, Any]:
        return batch.inputs(self.device)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, *, resume: bool = False) -> TrainResult:
        """Train until an epoch, step, time or early-stopping budget ends."""
        import torch

        cfg, st = self.cfg, self.state
        if resume:
            self.resume()
            st = self.state
        if self.dist.is_main:
            self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", resume_step=st.step if resume else None)
        steps_per_epoch = self.train_data.batches_per_epoch(cfg.batch_size, self.dist.world)
        planned = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        st.total_steps = st.total_steps or planned
        eval_every = eval_interval(planned, cfg)
        last_eval = st.step
        budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
        stopped = "epochs"
        self.model.train()
        progress = _Progress(st.total_steps, enabled=cfg.progress and self.dist.is_main, start=st.step)
        session_start = time.perf_counter()
        elapsed_before = st.elapsed_s
        last_checkpoint = time.perf_counter()
        window_tokens, window_start, window_losses = 0, time.perf_counter(), []
        session_steps = 0
        session_val_s, last_val_s = 0.0, None  # time spent validating; the latest validation's
        last_loss: float | None = None

        with _StopOnSigint() as sigint, progress:
            while True:
                finished_epoch = True
                for i, batch in enumerate(self.train_data.epoch(st.epoch, cfg.batch_size, seed=cfg.seed,
                                                                rank=self.dist.rank, world=self.dist.world)):
                    if i < st.batch_in_epoch:
                        continue  # resumed mid-epoch: these batches were trained before the checkpoint
                    lr = lr_at(st.step, st.total_steps, cfg)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr

                    # Normalise by the targets of the whole global batch so every token weighs
                    # the same whatever rank or row it sits in; DDP averages, so scale by world.
                    n_targets = all_reduce_sum(self.dist, [float(batch.n_target_tokens)], self.device)[0]
                    with self.autocast:
                        out = self.forward_model(**self._inputs(batch), num_items_in_batch=max(n_targets, 1.0))
                    loss = out.loss * self.dist.world
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)

                    step_loss = all_reduce_sum(self.dist, [float(loss.detach()) / self.dist.world], self.device)[0]
                    _check_finite("training", step_loss, st.step + 1, cfg)
                    tokens = int(all_reduce_sum(self.dist, [float(batch.n_tokens)], self.device)[0])
                    st.step += 1
                    st.batch_in_epoch = i + 1
                    st.tokens_seen += tokens
                    st.elapsed_s = elapsed_before + time.perf_counter() - session_start
                    window_tokens += tokens
                    window_losses.append(step_loss)
                    last_loss = step_loss

                    session_steps += 1
                    due = st.step - last_eval >= eval_every  # a validation (and a re-plan) is due
                    if budget_s and (session_steps == 10 or due):
                        # Fit the cosine schedule to what the time budget allows, once the
                        # speed is known (and again at each evaluation, which also costs time).
                        # Timings are averaged over processes so that all ranks plan alike.
                        session_s, elapsed = self._mean_over_ranks(time.perf_counter() - session_start, st.elapsed_s)
                        fits = st.step + int((budget_s - elapsed) / max(session_s / session_steps, 1e-9))
                        st.total_steps = max(st.step + 1, min(planned, fits))
                        progress.set_total(st.total_steps)
                        # Validate ~10 times within what the budget allows, not within the plan:
                        # a 1000-epoch plan cut to 7 minutes must still early-stop and keep its best.
                        eval_every = eval_interval(st.total_steps, cfg, val_s=last_val_s,
                                                   step_s=(session_s - session_val_s) / session_steps)

                    if st.step % cfg.log_every == 0 or st.step == 1:
                        now = time.perf_counter()
                        tps = window_tokens / max(now - window_start, 1e-9)
                        mean_loss = sum(window_losses) / len(window_losses)
                        self._log({"step": st.step, "epoch": st.epoch, "loss": round(mean_loss, 5),
                                   "lr": lr, "tokens_per_s": round(tps, 1), "elapsed_s": round(st.elapsed_s, 2)})
                        progress.show(loss=mean_loss, tps=tps)
                        window_tokens, window_start, window_losses = 0, now, []
                    progress.advance(st.step)

                    evaluated = False
                    if due:
                        last_eval = st.step
                    if due and self.val_data is not None:
                        evaluated = True
                        val_start = time.perf_counter()
                        self._evaluate_and_track()
                        if st.evals_since_best >= cfg.patience:
                            stopped = "early_stop"
                        now = time.perf_counter()
                        last_val_s, session_s = self._mean_over_ranks(now - val_start, now - session_start)
                        session_val_s += last_val_s
                        eval_every = eval_interval(st.total_steps, cfg, val_s=last_val_s,
                                                   step_s=(session_s - session_val_s) / session_steps)
                    stop_now = broadcast_flag(self.dist, sigint.requested, self.device)
                    if stop_now:
                        stopped = "interrupted"
                    elif st.step >= st.total_steps:
                        stopped = "max_minutes" if st.total_steps < planned else ("max_steps" if cfg.max_steps else "epochs")
                    elif budget_s and broadcast_flag(self.dist, st.elapsed_s >= budget_s, self.device):
                        stopped = "max_minutes"
                    if evaluated or stopped != "epochs" or time.perf_counter() - last_checkpoint > cfg.checkpoint_minutes * 60:
                        self.save_checkpoint()
                        last_checkpoint = time.perf_counter()
                    if stopped != "epochs" or st.step >= st.total_steps:
                        finished_epoch = False
                        break
                if not finished_epoch:
                    break
                st.epoch += 1
                st.batch_in_epoch = 0

        if stopped == "interrupted":
            raise TrainingInterrupted(
                f"training interrupted at step {st.step}; checkpoint saved in {self.run_dir}. "
                "Run the same command with --resume to continue."
            )
        # Validate the final weights unless the last step just did, then restore the best ones.
        if st.step != last_eval:
            self._evaluate_and_track()
        self.save_checkpoint()
        if self.best_path.is_file():
            self.model.load_state_dict(checkpoint.load(self.best_path))
        barrier(self.dist)
        best = st.best_val_loss if math.isfinite(st.best_val_loss) else None  # None: no validation data
        history = self.metrics.records() if self.metrics else []
        if self.dist.is_main and self.metrics:
            plot_loss(history, self.run_dir / "loss.png")
        seconds = st.elapsed_s
        return TrainResult(
            steps=st.step,
            epochs=round(st.epoch + st.batch_in_epoch / max(1, steps_per_epoch), 3),
            tokens_seen=st.tokens_seen,
            seconds=round(seconds, 2),
            tokens_per_second=round(st.tokens_seen / max(seconds, 1e-9), 1),
            best_val_loss=None if best is None else round(best, 5),
            val_perplexity=None if best is None else round(math.exp(min(best, 50)), 3),
            stopped=stopped,
            padding_fraction=round(self.train_data.padding_fraction, 4),
            final_loss=last_loss,
            history=history,
        )

    def _evaluate_and_track(self) -> None:
        """Validate, keep the best weights and count evaluations without improvement (for early stopping).

        Raises:
            TrainingError: the validation loss is not finite (the weights diverged).
        """
        st = self.state
        val = self.evaluate()
        if val is None:
            return
        _check_finite("validation", val, st.step, self.cfg)
        self._log({"step": st.step, "val_loss": round(val, 5), "val_ppl": round(math.exp(min(val, 50)), 3)})
        if val < st.best_val_loss - 1e-4:
            st.best_val_loss = val
            st.evals_since_best = 0
            if self.dist.is_main:
                checkpoint.save_atomic(self.model.state_dict(), self.best_path)
        else:
            st.evals_since_best += 1

    def _mean_over_ranks(self, *values: float) -> list[float]:
        """``values`` averaged over all processes: decisions taken from timings must agree on every rank."""
        return [v / self.dist.world for v in all_reduce_sum(self.dist, list(values), self.device)]

    def _log(self, record: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.write(record)


def _check_finite(what: str, loss: float, step: int, cfg: TrainConfig) -> None:
    """Stop a run whose loss is NaN or infinite: its weights are garbage and must not be saved or served."""
    if not math.isfinite(loss):
        raise TrainingError(
            f"the {what} loss became {loss} at step {step}: training diverged, so the run stopped and no "
            f"model was saved. Lower the learning rate (it was {cfg.learning_rate:g}: --learning-rate), "
            "or check the data and the base model."
        )


class _Progress:
    """A rich progress bar with loss, tokens/s and ETA; plain lines when output is not a terminal.

    A log file or CI gets a line every 30 s instead of a bar it cannot redraw.
    """

    LINE_EVERY_S = 30.0

    def __init__(self, total: int, *, enabled: bool, start: int = 0) -> None:
        self.enabled = enabled
        self.total = total
        self.start = start
        self._bar: Any = None
        self._task: Any = None
        self._plain = False
        self._last_line = 0.0
        self._started = time.perf_counter()
        self._step = start

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        console = Console()
        if not console.is_terminal:
            self._plain = True
            return self
        self._bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("train", total=self.total, completed=self.start, loss="-", tps="-")
        return self

    def show(self, *, loss: float, tps: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, loss=f"{loss:.3f}", tps=f"{tps:,.0f}")
        elif self._plain and time.perf_counter() - self._last_line >= self.LINE_EVERY_S:
            self._last_line = time.perf_counter()
            done = self._step - self.start
            elapsed = self._last_line - self._started
            eta = elapsed / done * (self.total - self._step) if done else 0.0
            print(f"step {self._step}/{self.total}  loss {loss:.3f}  {tps:,.0f} tok/s  "
                  f"elapsed {elapsed:.0f}s  ETA {eta:.0f}s", flush=True)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, step: int) -> None:
        self._step = step
        if self._bar is not None:
            self._bar.update(self._task, completed=step)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
