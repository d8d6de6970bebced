"""Training throughput: appkit's Trainer vs a minimal PyTorch loop vs transformers.Trainer, padded and padding-free.

Every trainer trains a fresh model (same preset, same seed, same tokenizer) on the same
conversations for the same number of optimizer steps; the first --warmup steps are not timed.
Speed is useful (non-padding) tokens per second: padding is work the model does for nothing.

- appkit:   appkit.train.loop.Trainer exactly as the product runs it (packed rows, no validation).
- minimal:  a hand-written loop over the very same packed batches (same optimizer, clipping, loss):
            the floor for appkit's loop overhead.
- hf:       transformers.Trainer with dynamic padding, one conversation per row, random order,
            group_by_length off, default optimizer and schedule (eval, saving, logging off).
- hf-flat:  transformers.Trainer fed without padding: DataCollatorWithFlattening concatenates a
            batch's conversations into one row with position ids restarting per conversation,
            which transformers turns into a per-conversation attention mask (use_cache off, as
            that mask needs). This is packing without fixed rows, so appkit/hf-flat measures the
            loop and the row layout, not packing against padding.

The same real tokens go into every step: the HF trainers take as many conversations per step
as a packed batch holds on average. Every optimizer step of every run is timed at the same point,
by one global torch hook that fires after ``optimizer.step()``, so the timed window holds whole
steps, data collation included.

A shared machine makes one run's speed noisy, so the trainers run --rounds times, interleaved
(each round in another order), and the ratios (appkit's tokens/s over each other trainer's, within
one round) are reported as the median over rounds with their range.

    python bench/train.py                     # tiny on CPU, 3 rounds: ~8 min on 2 quiet cores
    python bench/train.py --device cuda --preset small --steps 50
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from appkit.train.loop import TrainConfig, Trainer
from appkit.train.packing import Batch, PackedDataset

from common import DEFAULT_DATA, code_version  # bench/ is on sys.path when a script runs

TRAINERS = ("appkit", "minimal", "hf", "hf-flat")
TARGETS = {"minimal": 0.95, "hf": 1.3, "hf-flat": 1.2}  # appkit's tokens/s over the other's, at least


class StepClock:
    """Wall time after every optimizer step (of any optimizer, so HF's too), with a progress line."""

    def __init__(self, label: str, total: int, device: torch.device) -> None:
        self.label, self.total, self.device = label, total, device
        self.times: list[float] = []
        self._handle: Any = None

    def __enter__(self) -> StepClock:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handle = register_optimizer_step_post_hook(self._hook)
        self.times = [time.perf_counter()]  # run start: only for the progress line
        return self

    def _hook(self, *_: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()  # time finished work, not queued kernels
        self.times.append(time.perf_counter())
        n = len(self.times) - 1
        end = "\n" if n == self.total or not sys.stderr.isatty() else ""
        print(f"\r  {self.label:<8} step {n}/{self.total}  {self.times[-1] - self.times[-2]:.2f}s",
              end=end, file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    @property
    def step_ends(self) -> list[float]:
        return self.times[1:]


def summarize(ends: list[float], tokens: list[int], slots: list[int], warmup: int) -> dict[str, Any]:
    """Figures over steps warmup..end: step i runs from ends[i-1] to ends[i] and trains batch i."""
    n = len(ends)
    if len(tokens) < n:
        raise RuntimeError(f"{len(tokens)} batches recorded for {n} steps")
    toks, total = sum(tokens[warmup:n]), sum(slots[warmup:n])
    window = ends[-1] - ends[warmup - 1]
    step_s = [b - a for a, b in zip(ends[warmup - 1:], ends[warmup:])]
    return {"timed_steps": n - warmup, "seconds": round(window, 3), "tokens": toks,
            "tokens_per_s": round(toks / window, 1), "tokens_per_step": round(toks / (n - warmup), 1),
            "padding_fraction": round(1 - toks / total, 4), "median_step_s": round(statistics.median(step_s), 4),
            "max_step_s": round(max(step_s), 3)}


def load_data(path: Path) -> list[Any]:
    """All conversations of the csv files at ``path`` (a file or a folder of them)."""
    from appkit.data import read_history

    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not path.exists() or not files:
        print(f"error: data not found: {path} (pass --data FILE.csv or a folder of csv files)", file=sys.stderr)
        sys.exit(2)
    return [c for f in files for c in read_history(f)]


class RecordingDataset(PackedDataset):
    """appkit's PackedDataset, measured: records the real tokens of each batch it serves."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.log: list[int] = []

    def epoch(self, *a: Any, **kw: Any) -> Iterator[Batch]:
        for batch in super().epoch(*a, **kw):
            self.log.append(batch.n_tokens)
            yield batch


class CountingTrainer(Trainer):
    """appkit's Trainer, measured: records when it writes a checkpoint and how long that takes."""

    checkpoint_steps: list[int]
    checkpoint_s: list[float]

    def save_checkpoint(self) -> None:
        t = time.perf_counter()
        super().save_checkpoint()
        self.__dict__.setdefault("checkpoint_steps", []).append(self.state.step)
        self.__dict__.setdefault("checkpoint_s", []).append(time.perf_counter() - t)


@dataclasses.dataclass
class Setup:
    """What every trainer shares: the data, its packed form and the step sizes."""

    args: argparse.Namespace
    examples: list[Any]
    data: RecordingDataset
    hf_batch: int
    lr: float
    pad_id: int
    fresh: Callable[[], Any]  # a new model, same init every time

    @property
    def total(self) -> int:
        return self.args.warmup + self.args.steps


def run_appkit(s: Setup, clock: StepClock) -> dict[str, Any]:
    """appkit's Trainer as the product uses it; the dataset records what each step trained on."""
    args = s.args
    cfg = TrainConfig(batch_size=args.batch_size, learning_rate=s.lr, max_steps=s.total, seed=args.seed,
                      device=args.device, progress=False)
    s.data.log.clear()
    with tempfile.TemporaryDirectory(prefix="appkit-bench-") as run_dir:
        trainer = CountingTrainer(s.fresh(), s.data, None, cfg, Path(run_dir))
        with clock:
            trainer.run()
    # A checkpoint written after step s is timed within step s + 1.
    timed = [c for c in getattr(trainer, "checkpoint_steps", []) if args.warmup <= c < s.total]
    row = args.batch_size * s.data.row_length
    return {**summarize(clock.step_ends, s.data.log, [row] * len(s.data.log), args.warmup),
            "checkpoints_in_window": len(timed)}


def run_minimal(s: Setup, clock: StepClock) -> dict[str, Any]:
    """The same math as appkit's step (AdamW groups, clipping, loss per target token), nothing else."""
    from appkit.train.optim import decay_groups

    args, device = s.args, torch.device(s.args.device)
    model = s.fresh().to(device).train()
    opt = torch.optim.AdamW(decay_groups(model, 0.1), lr=s.lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    s.data.log.clear()
    batches = itertools.chain.from_iterable(s.data.epoch(e, args.batch_size, seed=args.seed) for e in itertools.count())
    with clock:
        for _, b in zip(range(s.total), batches):
            with autocast:
                loss = model(**b.inputs(device), num_items_in_batch=b.n_target_tokens).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
    row = args.batch_size * s.data.row_length
    return summarize(clock.step_ends, s.data.log, [row] * len(s.data.log), args.warmup)


class PadCollator:
    """Right-pads a list of conversations to the longest one; records real and padded tokens per batch.

    Not DataCollatorForSeq2Seq: appkit's tokenizer pads on the left (for generation), which would
    shift the positions of every short conversation during training; this does the same padding
    the right way round, with no tokenizer call (cheaper, so it favours HF if anything).
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self.log: list[tuple[int, int]] = []

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        B, T = len(features), max(len(f["input_ids"]) for f in features)
        ids = torch.full((B, T), self.pad_id, dtype=torch.long)
        labels = torch.full((B, T), -100, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["input_ids"])
            ids[b, :n], labels[b, :n], mask[b, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
        self.log.append((int(mask.sum()), B * T))
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class FlatCollator:
    """transformers' DataCollatorWithFlattening, recording the tokens of each batch (all real)."""

    def __init__(self) -> None:
        from transformers import DataCollatorWithFlattening

        self.inner = DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
        self.log: list[tuple[int, int]] = []

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        batch = self.inner(features)
        n = int(batch["input_ids"].numel())
        self.log.append((n, n))
        return batch


def run_hf(s: Setup, clock: StepClock, collator: PadCollator | FlatCollator) -> dict[str, Any]:
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    args = s.args
    model = s.fresh()
    model.config.use_cache = False  # a cache in training is waste, and the flattened rows' mask needs none
    rows = [{"input_ids": e.ids, "labels": e.labels} for e in s.examples]
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}  # renamed in transformers 5.2x
    no_length_grouping: dict[str, Any] = (
        {"train_sampling_strategy": "random"} if "train_sampling_strategy" in fields else {"group_by_length": False})
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as out:
        targs = TrainingArguments(
            output_dir=out, max_steps=s.total, per_device_train_batch_size=s.hf_batch, learning_rate=s.lr,
            seed=args.seed, use_cpu=args.device == "cpu", bf16=args.device.startswith("cuda"), report_to="none",
            save_strategy="no", eval_strategy="no", logging_strategy="no", dataloader_num_workers=0,
            disable_tqdm=True, remove_unused_columns=False, **no_length_grouping)
        trainer = HFTrainer(model=model, args=targs, train_dataset=rows, data_collator=collator)  # type: ignore[arg-type]
        with clock, contextlib.redirect_stdout(sys.stderr):  # HF's printer must not mix into our stdout
            trainer.train()
    return summarize(clock.step_ends, [a for a, _ in collator.log], [b for _, b in collator.log], args.warmup)


def run_trainer(name: str, s: Setup) -> dict[str, Any]:
    gc.collect()
    clock = StepClock(name, s.total, torch.device(s.args.device))
    if name == "appkit":
        return run_appkit(s, clock)
    if name == "minimal":
        return run_minimal(s, clock)
    return run_hf(s, clock, PadCollator(s.pad_id) if name == "hf" else FlatCollator())


def spread(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "rounds": [round(v, 3) for v in values]}


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"training throughput - {res['preset']} on {res['device']} ({res['threads']} threads), "
                    f"{res['steps']} timed steps after {res['warmup']} warm-up, {res['rounds']} interleaved rounds")
    for col in ("trainer", "batch", "real tok/step", "padding", "useful tok/s (median)", "appkit is (median, range)",
                "target"):
        t.add_column(col, justify="right" if col != "trainer" else "left")
    shapes = {"appkit": f"{res['batch_rows']} x {res['row_length']} packed",
              "minimal": f"{res['batch_rows']} x {res['row_length']} packed",
              "hf": f"{res['hf_batch']} convs, padded", "hf-flat": f"{res['hf_batch']} convs, one flat row"}
    for name in TRAINERS:
        runs = res["runs"][name]
        ratio = res["ratios"].get(name)
        shown = f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else ""
        target = res["targets"].get(f"appkit/{name}")
        t.add_row(name, shapes[name], f"{statistics.median(r['tokens_per_step'] for r in runs):,.0f}",
                  f"{statistics.median(r['padding_fraction'] for r in runs):.1%}",
                  f"{res['tokens_per_s'][name]['median']:,.0f}", shown,
                  "" if target is None else f">= {target['need']}x: {'met' if target['met'] else 'NOT met'}")
    console = Console(width=140)
    console.print(t)
    console.print(f"  fairness: same real tokens per step on average; HF batch = round(mean real tokens per packed "
                  f"batch / mean conversation length) = {res['hf_batch']}; each round runs the trainers in a "
                  "different order; a ratio compares runs of the same round")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bitext csv, or a folder of csv files")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=10, help="timed optimizer steps per trainer and round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, kernels, caches)")
    p.add_argument("--rounds", type=int, default=3, help="times every trainer runs, interleaved")
    p.add_argument("--batch-size", type=int, default=None, help="packed rows per step (default: the preset's)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        p.error("--warmup, --steps and --rounds must be at least 1 (the window starts at the end of a step)")

    from appkit.model.build import build_model, count_parameters
    from appkit.model.io import quiet_transformers
    from appkit.model.presets import get_preset
    from appkit.tokenizer import train_tokenizer
    from appkit.train.packing import encode_examples

    quiet_transformers()
    torch.set_num_threads(args.threads)  # the same for every run (HF does not change it)
    preset = get_preset(args.preset)
    args.batch_size = args.batch_size or preset.batch_size
    T = preset.context_length

    print("setup: reading data, training the tokenizer, encoding ...", file=sys.stderr)
    started = time.perf_counter()
    convs = load_data(args.data)
    tok = train_tokenizer([turn.text for c in convs for turn in c.turns])
    examples = encode_examples(tok, convs, max_length=T)
    data = RecordingDataset(examples, T, tok.pad_token_id)
    # HF batch: as many conversations as carry the same real tokens as one packed batch.
    mean_len = data.n_tokens / len(examples)
    hf_batch = max(1, round(args.batch_size * T * (1 - data.padding_fraction) / mean_len))
    print(f"  {len(convs)} conversations, {data.n_tokens:,} tokens, vocab {len(tok)}, {len(data.rows)} packed rows; "
          f"setup {time.perf_counter() - started:.1f}s", file=sys.stderr)
    setup = Setup(args, examples, data, hf_batch, preset.learning_rate, tok.pad_token_id,
                  lambda: build_model(preset, tok, seed=args.seed))

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAINERS}
    for r in range(args.rounds):
        for name in TRAINERS[r % len(TRAINERS):] + TRAINERS[:r % len(TRAINERS)]:
            runs[name].append(run_trainer(name, setup))

    res: dict[str, Any] = {
        "bench": "train", "code": code_version(), "preset": preset.name, "device": args.device,
        "threads": args.threads, "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
        "batch_rows": args.batch_size, "row_length": T, "hf_batch": hf_batch, "conversations": len(examples),
        "mean_conversation_tokens": round(mean_len, 1), "parameters": count_parameters(setup.fresh()),
        "tokens_per_s": {n: spread([r["tokens_per_s"] for r in runs[n]]) for n in TRAINERS},
        "ratios": {n: spread([a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(runs["appkit"], runs[n])])
                   for n in TRAINERS if n != "appkit"},
        "runs": runs,
    }
    res["targets"] = {f"appkit/{n}": {"value": res["ratios"][n]["median"], "need": need,
                                      "met": res["ratios"][n]["median"] >= need} for n, need in TARGETS.items()}
    print_table(res)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
