"""The training loop: every model appkit trains (language models, classifiers) trains here.

``Trainer(model, batches, val_batches, cfg, run_dir, loss=..., validate=...).run()`` reads top to
bottom: decide whether this is the last step, then the once-in-a-while work (validate and keep
the best weights, re-plan to the time budget, checkpoint), stop in one place, then one
optimizer step and its log line. Around it: AdamW with decay groups, warmup + cosine and an
optional EMA of the weights (optim.py), bf16 autocast where the hardware computes bf16 (CUDA,
recent CPUs: optim.autocast_for) and fp32 elsewhere, DDP when launched by torchrun (only rank 0
writes files or shows progress), atomic checkpoints and exact resume, a SIGINT that checkpoints
before stopping, and a NaN stop.

What differs between models is passed in: ``batches`` (packing.py's packed rows for a language
model, batches.py's padded texts for a classifier), ``loss(model, batch, device)`` returning
the summed loss and how many items it sums over, and ``validate(model)`` returning a
``Validation`` (by default the loss over ``val_batches``).
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from appkit.errors import CheckpointError, TrainingError
from appkit.train import checkpoint
from appkit.train.distributed import DistContext, all_reduce_sum, barrier, init
from appkit.train.optim import Ema, autocast_for, lr_at, make_optimizer
from appkit.train.report import MetricsLog, plot_loss

if TYPE_CHECKING:
    import torch


@dataclass
class TrainConfig:
    """Hyper-parameters and budgets of one run."""

    batch_size: int = 8  # rows (or texts) per step per process
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decays to this share of the peak
    warmup_share: float = 0.1  # of the run spent warming up ...
    warmup_steps: int | None = 20  # ... but at most this many steps (None: no cap)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    epochs: float = 10.0
    max_steps: int | None = None  # given, it replaces the epochs' plan
    max_minutes: float | None = None
    eval_every: int | None = None  # steps; None -> about 10 evaluations per run
    patience: int = 3  # evaluations without improvement before stopping early
    checkpoint_minutes: float = 2.0  # also checkpoint at every evaluation
    resumable: bool = True  # write state.pt (weights, optimizer, position) for --resume
    log_every: int = 5
    compile: bool | None = False  # torch.compile the model; None: where it pays (see COMPILE_PAYS_AFTER_S)
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    title: str = "training"  # the progress bar's and the loss chart's


@dataclass
class TrainState:
    """Everything besides weights and optimizer moments that a resume needs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_val_loss: float = math.inf
    best_score: list[float] = field(default_factory=list)  # the best validation's score (lower is better)
    best_step: int = 0
    best_figures: dict[str, float] = field(default_factory=dict)
    evals_since_best: int = 0
    total_steps: int = 0


@dataclass
class Validation:
    """One validation: ``loss`` (checked for NaN, logged as val_loss), ``score`` to minimise
    (compared as a tuple; None: the loss) and more ``figures`` to log (e.g. val_accuracy)."""

    loss: float
    score: tuple[float, ...] | None = None
    figures: dict[str, float] = field(default_factory=dict)


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
    stopped: str  # epochs | max_steps | max_minutes | early_stop
    padding_fraction: float | None
    final_loss: float | None = None  # the last step's loss, averaged over all processes
    best_step: int | None = None
    best: dict[str, float] = field(default_factory=dict)  # the best validation's figures
    compiled: bool = False  # the steps after the first few ran a torch.compile'd model
    compile_note: str = ""  # what compiling did or why it did not happen, for the log
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("history")
        return d


class Batches(Protocol):
    """Training data as the loop reads it (packing.PackedDataset, batches.TextBatches)."""

    def batches_per_epoch(self, batch_size: int, world: int = 1) -> int: ...

    def epoch(self, epoch: int, batch_size: int, *, seed: int, shuffle: bool = True, rank: int = 0,
              world: int = 1) -> Iterator[Any]: ...


LossFn = Callable[[Any, Any, "torch.device"], "tuple[torch.Tensor, float]"]  # (model, batch, device) -> (sum, items)
ValidateFn = Callable[[Any], "Validation | None"]


def causal_lm_loss(model: Any, batch: Any, device: torch.device) -> tuple[torch.Tensor, float]:
    """A packed batch's loss summed over its target tokens, and their number."""
    return model(**batch.inputs(device), num_items_in_batch=1).loss, batch.n_target_tokens


class TrainingInterrupted(TrainingError):
    """Training stopped on SIGINT (after saving a checkpoint when the run is resumable)."""

    exit_code = 130


VALIDATION_SHARE = 0.1  # the most of the training time that periodic validation may take
# An automatic run compiles its model (after 10 steps, once their speed is known) only when at
# least this much training is left: compiling the tiny preset takes ~30 s on 2 CPU cores and
# then saves about a third of every step (dev/LOG.md), so it repays itself after a minute or two.
COMPILE_PAYS_AFTER_S = 180.0


def eval_interval(total_steps: int, cfg: TrainConfig, *, step_s: float | None = None,
                  val_s: float | None = None) -> int:
    """Steps between validations: about 10 per run, but never more than a tenth of the time.

    Once a validation has been timed (``val_s``) against a training step (``step_s``), the
    interval grows until validating costs at most VALIDATION_SHARE of training: a 10% split
    of a large corpus under a short budget otherwise eats the budget.
    """
    if cfg.eval_every:
        return cfg.eval_every
    every = max(10, total_steps // 10)
    if step_s and val_s:
        every = max(every, math.ceil(val_s / (VALIDATION_SHARE * step_s)))
    return every


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


@dataclass
class _Session:
    """This process's clock and recent figures since the run (re)started."""

    elapsed_before: float  # training time of earlier sessions of a resumed run
    start: float = field(default_factory=time.perf_counter)
    checkpointed: float = field(default_factory=time.perf_counter)
    steps: int = 0
    val_s: float = 0.0  # spent validating
    last_val_s: float | None = None
    lr: float = 0.0
    step_s: float = 0.0  # a training step's time, averaged over processes (set by _replan)
    last_loss: float | None = None
    window_start: float = field(default_factory=time.perf_counter)
    window_tokens: int = 0
    window_losses: list[float] = field(default_factory=list)

    def stepped(self, loss: float, tokens: int) -> None:
        self.steps += 1
        self.last_loss = loss
        self.window_tokens += tokens
        self.window_losses.append(loss)

    def validated(self, seconds: float) -> None:
        self.val_s += seconds
        self.last_val_s = seconds

    def window_figures(self) -> tuple[float, float]:
        """(mean loss, tokens/s) since the last call; starts the next window."""
        now = time.perf_counter()
        figures = (sum(self.window_losses) / len(self.window_losses),
                   self.window_tokens / max(now - self.window_start, 1e-9))
        self.window_start, self.window_tokens, self.window_losses = now, 0, []
        return figures


class Trainer:
    """Trains ``model`` on ``train_data``; ``run()`` returns a ``TrainResult``."""

    def __init__(self, model: torch.nn.Module, train_data: Batches, val_data: Batches | None, cfg: TrainConfig,
                 run_dir: Path, *, loss: LossFn = causal_lm_loss, validate: ValidateFn | None = None) -> None:
        import torch

        self.cfg, self.run_dir = cfg, run_dir
        self.dist = DistContext.from_env()
        if not train_data.batches_per_epoch(cfg.batch_size, self.dist.world):
            raise TrainingError("nothing to train on: no training example is left after curation.")
        device = cfg.device
        if self.dist.enabled and device.startswith("cuda"):
            device = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(device)
        init(self.dist, device)
        self.model = model.to(self.device)
        self.train_data, self.val_data = train_data, val_data
        self.loss, self.validate = loss, validate or self._mean_loss
        self.has_validation = validate is not None or (
            val_data is not None and val_data.batches_per_epoch(cfg.batch_size, self.dist.world) > 0)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.ema = Ema(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.state = TrainState()
        self.metrics: MetricsLog | None = None
        self.autocast = autocast_for(self.device)
        self.forward_model: Any = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.forward_model = DistributedDataParallel(self.model)
        self.compiled = False  # a compiled step has run
        self.compile_note = ""
        self._eager_model: Any = self.forward_model  # what a failed compile falls back to
        self._compile_unproven = False  # compiled, but no step has run it yet (a failure falls back)
        if cfg.compile:
            self._compile()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, *, resume: bool = False) -> TrainResult:
        """Train until the plan, the clock, early stopping or Ctrl-C ends the run; keep the best weights.

        Raises:
            TrainingError: a training or validation loss is not finite (the step is named).
            TrainingInterrupted: Ctrl-C (a checkpoint is saved first when the run is resumable).
        """
        from appkit.progress import Progress

        cfg = self.cfg
        if resume:
            self.resume()
        st = self.state
        if self.dist.is_main:
            self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", resume_step=st.step if resume else None)
            if not resume:
                self.best_path.unlink(missing_ok=True)  # an earlier run's, in a reused run folder
        steps_per_epoch = self.train_data.batches_per_epoch(cfg.batch_size, self.dist.world)
        planned = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        st.total_steps = st.total_steps or planned
        budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
        eval_every = eval_interval(st.total_steps, cfg)
        batches = self._batches()
        session = _Session(elapsed_before=st.elapsed_s)
        last_eval = st.step
        self.model.train()

        with _StopOnSigint() as sigint, Progress(cfg.title, st.total_steps, enabled=cfg.progress and self.dist.is_main,
                                                 start=st.step, fields=("loss", "tok/s")) as bar:
            while True:
                # What ends the run: decided here only, and alike on every process.
                stopped = self._stop_reason(sigint.requested, budget_s, planned)
                last_step = stopped is not None

                # Once in a while: validate, keep the best weights, stop early once they stop improving.
                due = st.step - last_eval >= eval_every or (last_step and st.step != last_eval)
                evaluated = due and self.has_validation and stopped != "interrupted"
                if evaluated:
                    self._validate_and_track(session)
                    if st.evals_since_best >= cfg.patience and not last_step:
                        stopped, last_step = "early_stop", True
                if due:
                    last_eval = st.step

                # Once in a while: fit the schedule to the time budget once the speed is known, and
                # again at each validation (which costs time too); and space the validations.
                if session.steps and (due or session.steps == 10):
                    eval_every = self._replan(session, budget_s, planned)
                    bar.set_total(st.total_steps)
                    if session.steps == 10 and cfg.compile is None:
                        self._compile_if_it_pays(session)

                # Once in a while: checkpoint (at every validation, every few minutes, at the end).
                if last_step or evaluated or time.perf_counter() - session.checkpointed > cfg.checkpoint_minutes * 60:
                    self.save_checkpoint()
                    session.checkpointed = time.perf_counter()
                if last_step:
                    break

                # One optimizer step, and once in a while its log line.
                if self._compile_unproven:
                    bar.update(st.step, **{"tok/s": "compiling"})  # this step compiles: tens of seconds
                self._step(next(batches), session)
                if st.step % cfg.log_every == 0 or st.step == 1:
                    loss, tps = session.window_figures()
                    self._log({"step": st.step, "epoch": st.epoch, "loss": round(loss, 5), "lr": session.lr,
                               "tokens_per_s": round(tps, 1), "elapsed_s": round(st.elapsed_s, 2)})
                    bar.update(st.step, loss=loss, **{"tok/s": f"{tps:,.0f}"})
                else:
                    bar.update(st.step)

        if stopped == "interrupted":
            saved = (f"; checkpoint saved in {self.run_dir}. Run the same command with --resume to continue"
                     if cfg.resumable else "")
            raise TrainingInterrupted(f"training interrupted at step {st.step}{saved}.")
        return self._finish(stopped, steps_per_epoch, session.last_loss)

    def _stop_reason(self, interrupt: bool, budget_s: float | None, planned: int) -> str | None:
        """Why the run ends now (None: it goes on): Ctrl-C, the plan (epochs or steps) or the clock."""
        st = self.state
        out_of_time = budget_s is not None and st.elapsed_s >= budget_s
        interrupted, out_of_time = (v > 0 for v in all_reduce_sum(
            self.dist, [float(interrupt), float(out_of_time)], self.device))
        if interrupted:
            return "interrupted"
        if st.step >= st.total_steps:
            return "max_minutes" if st.total_steps < planned else "max_steps" if self.cfg.max_steps else "epochs"
        return "max_minutes" if out_of_time else None

    def _step(self, batch: Any, session: _Session) -> None:
        """One optimizer step on ``batch``.

        The loss is normalised by the items of the whole global batch, so every item weighs the
        same whatever process it is on; DDP averages gradients, so it is scaled by the world size.
        """
        import torch

        cfg, st, dist = self.cfg, self.state, self.dist
        session.lr = lr_at(st.step, st.total_steps, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = session.lr
        if self._compile_unproven:
            started = time.perf_counter()
            try:
                loss = self._forward_backward(batch)
                self.compiled = True
                self.compile_note = f"compiled (torch.compile at step {st.step}, {time.perf_counter() - started:.0f}s)"
            except Exception as exc:  # noqa: BLE001 -- any compiler failure: train on, uncompiled
                self._stop_compiling(exc)
                loss = self._forward_backward(batch)
            self._compile_unproven = False
        else:
            loss = self._forward_backward(batch)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        step_loss, tokens = all_reduce_sum(dist, [float(loss.detach()) / dist.world, float(batch.n_tokens)], self.device)
        _check_finite("training", step_loss, st.step + 1, cfg)
        st.step += 1
        st.tokens_seen += int(tokens)
        st.elapsed_s = session.elapsed_before + time.perf_counter() - session.start
        session.stepped(step_loss, int(tokens))

    def _forward_backward(self, batch: Any) -> torch.Tensor:
        """The batch's loss, normalised over the global batch's items, with its gradients computed."""
        dist = self.dist
        with self.autocast:
            total, items = self.loss(self.forward_model, batch, self.device)
        global_items = all_reduce_sum(dist, [float(items)], self.device)[0]
        loss = total * (dist.world / max(global_items, 1.0))
        loss.backward()
        return loss

    # -- compiling -------------------------------------------------------------------------------

    def _compile(self) -> None:
        """Run the steps from now on through ``torch.compile`` (the next step compiles).

        ``dynamic=False``: every training batch has the same shape (packing.PackedDataset fills
        the last one), so one static graph serves the whole run. Validation and the saved weights
        use the uncompiled model, which shares the compiled one's parameters.
        """
        import torch

        self.forward_model = torch.compile(self.forward_model, dynamic=False)
        self._compile_unproven = True

    def _compile_if_it_pays(self, session: _Session) -> None:
        """Compile for the rest of an automatic run when enough of it is left to repay the compile time."""
        left_s = (self.state.total_steps - self.state.step) * session.step_s  # alike on every process
        if left_s >= COMPILE_PAYS_AFTER_S:
            self._compile()
        else:
            self.compile_note = f"not compiled: about {left_s:.0f}s of training left, too little to repay compiling"

    def _stop_compiling(self, exc: Exception) -> None:
        """Give up on a compiled model that failed on its first step: an explicit --compile fails the
        run, an automatic one trains on uncompiled."""
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if self.cfg.compile:
            raise TrainingError(
                f"--compile failed on the first compiled step ({type(exc).__name__}: {first_line}). "
                "torch.compile needs a C++ compiler on a CPU (g++ or clang++) and Triton on a GPU; "
                "train without --compile."
            ) from exc
        self.optimizer.zero_grad(set_to_none=True)  # whatever the failed attempt left
        self.forward_model = self._eager_model
        self.compile_note = f"not compiled: torch.compile failed ({type(exc).__name__}: {first_line})"

    def _replan(self, session: _Session, budget_s: float | None, planned: int) -> int:
        """Fit the plan to what the time budget allows at the speed measured; the steps between validations.

        Timings are averaged over processes so that all of them plan alike. Validations come ~10
        times within what the budget allows, not within the plan: a 1000-epoch plan cut to 7
        minutes must still early-stop and keep its best weights.
        """
        st = self.state
        session_s, elapsed, val_s, last_val_s = self._mean_over_ranks(
            time.perf_counter() - session.start, st.elapsed_s, session.val_s, session.last_val_s or 0.0)
        if budget_s:
            fits = st.step + int((budget_s - elapsed) / max(session_s / session.steps, 1e-9))
            st.total_steps = max(st.step + 1, min(planned, fits))
        session.step_s = (session_s - val_s) / session.steps
        return eval_interval(st.total_steps, self.cfg, val_s=last_val_s or None, step_s=session.step_s)

    def _batches(self) -> Iterator[Any]:
        """Training batches, epoch after epoch, from where the run is (a resumed run skips what it trained)."""
        st, cfg = self.state, self.cfg
        while True:
            for i, batch in enumerate(self.train_data.epoch(st.epoch, cfg.batch_size, seed=cfg.seed,
                                                            rank=self.dist.rank, world=self.dist.world)):
                if i >= st.batch_in_epoch:
                    st.batch_in_epoch = i + 1
                    yield batch
            st.epoch += 1
            st.batch_in_epoch = 0

    def _finish(self, stopped: str | None, steps_per_epoch: int, last_loss: float | None) -> TrainResult:
        """Put the best weights (the EMA's when there was no validation) in the model; the run's figures."""
        st = self.state
        if self.best_path.is_file():
            self.model.load_state_dict(checkpoint.load(self.best_path))
        elif self.ema is not None:
            with self.ema.swapped():
                averaged = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(averaged)
        barrier(self.dist)
        if not self.cfg.resumable and self.dist.is_main:
            self.best_path.unlink(missing_ok=True)  # only a resume would read it again
        best = st.best_val_loss if math.isfinite(st.best_val_loss) else None  # None: no validation
        history = self.metrics.records() if self.metrics else []
        if self.dist.is_main and self.metrics:
            plot_loss(history, self.run_dir / "loss.png", title=f"{self.cfg.title}: loss")
        return TrainResult(
            steps=st.step, epochs=round(st.epoch + st.batch_in_epoch / max(1, steps_per_epoch), 3),
            tokens_seen=st.tokens_seen, seconds=round(st.elapsed_s, 2),
            tokens_per_second=round(st.tokens_seen / max(st.elapsed_s, 1e-9), 1),
            best_val_loss=None if best is None else round(best, 5),
            val_perplexity=None if best is None else round(math.exp(min(best, 50)), 3),
            stopped=stopped or "epochs", padding_fraction=getattr(self.train_data, "padding_fraction", None),
            final_loss=last_loss, best_step=st.best_step if best is not None else None,
            best=dict(st.best_figures), history=history,
            compiled=self.compiled, compile_note=self.compile_note,
        )

    # -- validation ----------------------------------------------------------------------------

    def evaluate(self) -> float | None:
        """The validation loss of the weights now (None without validation data)."""
        validation = self._run_validation()
        return None if validation is None else validation.loss

    def _run_validation(self) -> Validation | None:
        """``validate`` on the model in eval mode (with the EMA's weights when there is one)."""
        import torch

        if not self.has_validation:
            return None
        self.model.eval()
        try:
            with torch.inference_mode(), self.autocast, self.ema.swapped() if self.ema else nullcontext():
                return self.validate(self.model)
        finally:
            self.model.train()

    def _mean_loss(self, model: Any) -> Validation | None:
        """The loss over every validation batch, per item, over all processes (None: no item)."""
        assert self.val_data is not None
        total, count = 0.0, 0.0
        for batch in self.val_data.epoch(0, self.cfg.batch_size, seed=0, shuffle=False, rank=self.dist.rank,
                                         world=self.dist.world):
            loss, items = self.loss(model, batch, self.device)
            total, count = total + float(loss), count + float(items)
        total, count = all_reduce_sum(self.dist, [total, count], self.device)
        return Validation(total / count) if count else None  # no target: no figure, not a perfect 0

    def _validate_and_track(self, session: _Session | None = None) -> None:
        """Validate, log, keep the best weights and count validations without improvement.

        Raises:
            TrainingError: the validation loss is not finite (the weights diverged).
        """
        st = self.state
        started = time.perf_counter()
        validation = self._run_validation()
        if session is not None:
            session.validated(self._mean_over_ranks(time.perf_counter() - started)[0])
        if validation is None:
            return
        _check_finite("validation", validation.loss, st.step, self.cfg)
        self._log({"step": st.step, "val_loss": round(validation.loss, 5), **validation.figures})
        score = list(validation.score or (validation.loss,))
        if not st.best_score or score < st.best_score:
            st.best_val_loss, st.best_score, st.best_step = validation.loss, score, st.step
            st.best_figures = {"val_loss": validation.loss, **validation.figures}
            st.evals_since_best = 0
            if self.dist.is_main:
                with self.ema.swapped() if self.ema else nullcontext():
                    checkpoint.save_atomic(self.model.state_dict(), self.best_path)
        else:
            st.evals_since_best += 1

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.run_dir / checkpoint.STATE_FILE

    @property
    def best_path(self) -> Path:
        return self.run_dir / checkpoint.BEST_FILE

    def save_checkpoint(self) -> None:
        """Write weights, optimizer moments, the EMA and the loop's state (rank 0 only; resumable runs)."""
        if self.cfg.resumable and self.dist.is_main:
            payload = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                       "state": asdict(self.state), "config": asdict(self.cfg)}
            if self.ema is not None:
                payload["ema"] = self.ema.state_dict()
            checkpoint.save_atomic(payload, self.state_path)
        barrier(self.dist)

    def resume(self) -> None:
        """Continue from the checkpoint in ``run_dir``: same weights, moments, data position."""
        payload = checkpoint.load(self.state_path)
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            if self.ema is not None:
                self.ema.load_state_dict(payload["ema"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"{self.state_path}: the checkpoint does not match this model ({str(e)[:200]}). "
                "Run without --resume, or with the same settings as the interrupted run."
            ) from None
        self.state = TrainState(**payload["state"])

    # -- helpers -------------------------------------------------------------------------------

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
