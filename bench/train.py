"""Training throughput: appkit's Trainer vs a minimal PyTorch loop vs transformers.Trainer.

All three train a fresh model (same preset, same seed, same tokenizer) on the same conversations
for the same number of optimizer steps; the first --warmup steps are not timed. Speed is useful
(non-padding) tokens per second: padding is work the model does for nothing, so it must not count.

- appkit:  appkit.train.loop.Trainer exactly as the product runs it (packed rows, no validation).
- minimal: a hand-written loop over the very same packed batches (same optimizer, clipping, loss):
           the floor for appkit's loop overhead.
- hf:      transformers.Trainer with dynamic padding, one conversation per row, random order,
           group_by_length off, default optimizer and schedule (eval, saving, logging off).

Every optimizer step of every run is timed at the same point, by one global torch hook that fires
after ``optimizer.step()``; so the timed window holds whole steps, data collation included.

    python bench/train.py                     # tiny on CPU: ~1.5 min on 2 quiet cores, up to ~5 if shared
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from appkit.train.loop import Trainer, TrainConfig
from appkit.train.packing import Batch, PackedDataset

from common import DEFAULT_DATA, code_version  # bench/ is on sys.path when a script runs


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
    step_s = [b - a for a, b in zip(ends[warmup - 1 :], ends[warmup:])]
    return {"timed_steps": n - warmup, "seconds": round(window, 3), "tokens": toks,
            "tokens_per_s": round(toks / window, 1), "tokens_per_step": round(toks / (n - warmup), 1),
            "padding_fraction": round(1 - toks / total, 4), "median_step_s": round(statistics.median(step_s), 4),
            "max_step_s": round(max(step_s), 3),
            # Per-step speed without the occasional slow step (a checkpoint, an allocator hiccup).
            "median_step_tokens_per_s": round(toks / (n - warmup) / statistics.median(step_s), 1)}


def load_data(path: Path) -> list[Any]:
    """All conversations of the csv files at ``path`` (a file or a folder of them)."""
    from appkit.data import read_history

    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not path.exists() or not files:
        print(f"error: data not found: {path} (pass --data FILE.csv or a folder of csv files)", file=sys.stderr)
        sys.exit(2)
    return [c for f in files for c in read_history(f)]


def run_appkit(model: Any, data: Any, args: argparse.Namespace, lr: float, clock: StepClock) -> dict[str, Any]:
    """appkit's Trainer as the product uses it; the dataset records what each step trained on."""
    cfg = TrainConfig(batch_size=args.batch_size, learning_rate=lr, max_steps=args.warmup + args.steps,
                      seed=args.seed, device=args.device, progress=False)
    with tempfile.TemporaryDirectory(prefix="appkit-bench-") as run_dir:
        trainer = CountingTrainer(model, data, None, cfg, Path(run_dir))
        with clock:
            trainer.run()
    # With no validation data every would-be evaluation still writes a checkpoint: count those
    # that fell inside the timed window (they are part of what the product pays).
    # A checkpoint written after step s is timed within step s + 1.
    timed = [s for s in trainer.checkpoint_steps if args.warmup <= s < args.warmup + args.steps]
    return {"checkpoints_in_window": len(timed), "checkpoint_s": [round(t, 3) for t in trainer.checkpoint_s]}


class CountingTrainer(Trainer):
    """appkit's Trainer, measured: records when it writes a checkpoint and how long that takes."""

    checkpoint_steps: list[int]
    checkpoint_s: list[float]

    def save_checkpoint(self) -> None:
        t = time.perf_counter()
        super().save_checkpoint()
        self.__dict__.setdefault("checkpoint_steps", []).append(self.state.step)
        self.__dict__.setdefault("checkpoint_s", []).append(time.perf_counter() - t)


class RecordingDataset(PackedDataset):
    """appkit's PackedDataset, measured: records the real tokens of each batch it serves."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.log: list[int] = []

    def epoch(self, *a: Any, **kw: Any) -> Iterator[Batch]:
        for batch in super().epoch(*a, **kw):
            self.log.append(batch.n_tokens)
            yield batch


def run_minimal(model: Any, data: Any, args: argparse.Namespace, lr: float, clock: StepClock) -> None:
    """The same math as appkit's step (AdamW groups, clipping, loss per target token), nothing else."""
    device = torch.device(args.device)
    model.to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    batches = itertools.chain.from_iterable(data.epoch(e, args.batch_size, seed=args.seed) for e in itertools.count())
    with clock:
        for _, b in zip(range(args.warmup + args.steps), batches):
            with autocast:
                loss = model(**b.inputs(device), num_items_in_batch=b.n_target_tokens).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)


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


def run_hf(model: Any, examples: list[Any], args: argparse.Namespace, batch: int, lr: float, pad_id: int,
           clock: StepClock) -> PadCollator:
    from transformers import Trainer, TrainingArguments

    collator = PadCollator(pad_id)
    rows = [{"input_ids": e.ids, "labels": e.labels} for e in examples]
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}  # renamed in transformers 5.2x
    no_length_grouping: dict[str, Any] = (
        {"train_sampling_strategy": "random"} if "train_sampling_strategy" in fields else {"group_by_length": False})
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as out:
        targs = TrainingArguments(
            output_dir=out, max_steps=args.warmup + args.steps, per_device_train_batch_size=batch,
            learning_rate=lr, seed=args.seed, use_cpu=args.device == "cpu", bf16=args.device.startswith("cuda"),
            report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no",
            dataloader_num_workers=0, disable_tqdm=True, **no_length_grouping)
        trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collator)  # type: ignore[arg-type]
        with clock, contextlib.redirect_stdout(sys.stderr):  # HF's printer must not mix into our stdout
            trainer.train()
    return collator


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"training throughput - {res['preset']} on {res['device']} ({res['threads']} threads), "
                    f"{res['steps']} timed steps after {res['warmup']} warm-up")
    for col in ("trainer", "batch", "real tok/step", "padding", "median step s", "useful tok/s", "appkit is",
                "at median step"):
        t.add_column(col, justify="right" if col != "trainer" else "left")
    for key, name, shape in (("appkit", "appkit Trainer", f"{res['batch_rows']} x {res['row_length']} packed"),
                             ("minimal", "minimal loop", f"{res['batch_rows']} x {res['row_length']} packed"),
                             ("hf", "HF Trainer", f"{res['hf_batch']} convs, padded")):
        r = res[key]
        ratio = "" if key == "appkit" else f"{res['appkit']['tokens_per_s'] / r['tokens_per_s']:.2f}x"
        t.add_row(name, shape, f"{r['tokens_per_step']:,.0f}", f"{r['padding_fraction']:.1%}",
                  f"{r['median_step_s']:.3f}", f"{r['tokens_per_s']:,.0f}", ratio,
                  f"{r['median_step_tokens_per_s']:,.0f} tok/s")
    console = Console(width=120)
    console.print(t)
    for k, v in res["targets"].items():
        console.print(f"  target {k}: {'met' if v['met'] else 'NOT met'} ({v['value']:.2f}x, need >= {v['need']}x)")
    console.print(f"  at median step times: appkit/minimal {res['median_step_ratio_appkit_minimal']:.2f}x, "
                  f"appkit/hf {res['median_step_ratio_appkit_hf']:.2f}x (robust to stray slow steps)")
    a = res["appkit"]
    console.print(f"  appkit wrote {a['checkpoints_in_window']} checkpoint(s) inside the timed window "
                  f"({', '.join(f'{x:.2f}s' for x in a['checkpoint_s'])} each write, all run): with no validation "
                  "data every would-be evaluation still checkpoints")
    console.print(f"  fairness: same real tokens (and ~conversations) per step; HF batch = round(mean real "
                  f"tokens per packed batch / mean conversation length) = {res['hf_batch']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bitext csv, or a folder of csv files")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=12, help="timed optimizer steps per trainer")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, kernels, caches)")
    p.add_argument("--batch-size", type=int, default=None, help="packed rows per step (default: the preset's)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be at least 1 (the window starts at the end of a step)")

    from appkit.model.build import build_model, count_parameters
    from appkit.model.io import quiet_transformers
    from appkit.model.presets import get_preset
    from appkit.tokenizer import train_tokenizer
    from appkit.train.packing import encode_examples

    quiet_transformers()
    torch.set_num_threads(args.threads)  # the same for all three runs (HF does not change it)
    device = torch.device(args.device)
    preset = get_preset(args.preset)
    args.batch_size = args.batch_size or preset.batch_size
    T = preset.context_length
    setup: dict[str, float] = {}

    print("setup: reading data, training the tokenizer, encoding ...", file=sys.stderr)
    t = time.perf_counter()
    convs = load_data(args.data)
    setup["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tok = train_tokenizer([turn.text for c in convs for turn in c.turns])
    setup["tokenizer_s"] = time.perf_counter() - t
    t = time.perf_counter()
    examples = encode_examples(tok, convs, max_length=T)
    setup["encode_s"] = time.perf_counter() - t
    data = RecordingDataset(examples, T, tok.pad_token_id)
    # HF batch: as many conversations as carry the same real tokens as one packed batch. Equal
    # useful work per optimizer step (and so about equal conversations per step too); what HF
    # then pays extra is exactly its padding.
    mean_len = data.n_tokens / len(examples)
    hf_batch = max(1, round(args.batch_size * T * (1 - data.padding_fraction) / mean_len))
    total = args.warmup + args.steps
    print(f"  {len(convs)} conversations, {data.n_tokens:,} tokens, vocab {len(tok)}, "
          f"{len(data.rows)} packed rows; setup {sum(setup.values()):.1f}s", file=sys.stderr)

    def fresh() -> Any:
        gc.collect()
        return build_model(preset, tok, seed=args.seed)  # same init for all three

    res: dict[str, Any] = {"bench": "train", "code": code_version(), "preset": preset.name, "device": args.device,
                           "threads": args.threads, "steps": args.steps, "warmup": args.warmup, "batch_rows": args.batch_size,
                           "row_length": T, "hf_batch": hf_batch, "conversations": len(examples),
                           "mean_conversation_tokens": round(mean_len, 1),
                           "setup": {k: round(v, 2) for k, v in setup.items()}}
    lr = preset.learning_rate
    model = fresh()
    res["parameters"] = count_parameters(model)

    data.log.clear()
    clock = StepClock("appkit", total, device)
    extra = run_appkit(model, data, args, lr, clock)
    res["appkit"] = {**summarize(clock.step_ends, data.log, [args.batch_size * T] * len(data.log), args.warmup),
                     **extra}

    data.log.clear()
    model = fresh()
    clock = StepClock("minimal", total, device)
    run_minimal(model, data, args, lr, clock)
    res["minimal"] = summarize(clock.step_ends, data.log, [args.batch_size * T] * len(data.log), args.warmup)

    model = fresh()
    clock = StepClock("hf", total, device)
    log = run_hf(model, examples, args, hf_batch, lr, tok.pad_token_id, clock).log
    res["hf"] = summarize(clock.step_ends, [a for a, _ in log], [b for _, b in log], args.warmup)

    vs_min = res["appkit"]["tokens_per_s"] / res["minimal"]["tokens_per_s"]
    vs_hf = res["appkit"]["tokens_per_s"] / res["hf"]["tokens_per_s"]
    res["ratio_appkit_minimal"], res["ratio_appkit_hf"] = round(vs_min, 3), round(vs_hf, 3)
    # The same ratios from median step times: robust to a stray slow step on a shared machine,
    # but blind to appkit's in-window checkpoints. Targets use the window figures above.
    med = {k: res[k]["median_step_tokens_per_s"] for k in ("appkit", "minimal", "hf")}
    res["median_step_ratio_appkit_minimal"] = round(med["appkit"] / med["minimal"], 3)
    res["median_step_ratio_appkit_hf"] = round(med["appkit"] / med["hf"], 3)
    res["targets"] = {"appkit/minimal": {"value": round(vs_min, 3), "need": 0.95, "met": vs_min >= 0.95},
                      "appkit/hf": {"value": round(vs_hf, 3), "need": 1.3, "met": vs_hf >= 1.3}}
    print_table(res)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
