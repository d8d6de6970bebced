"""Generation speed: appkit's Engine vs ``model.generate`` on the same model, and Engine batching.

1. Batch 1, one prompt at a time (real customer messages from the bitext csv), greedy, both sides
   forced to produce exactly --max-new-tokens tokens: the Engine's stop set is emptied and
   ``generate`` gets ``eos_token_id=None``, so neither stops early, and no logit is altered
   (min_new_tokens would mask end-of-turn on one side only and change the greedy tokens). The
   texts are compared: with identical greedy tokens the two do exactly the same work.
   - time to first token (TTFT): Engine: from ``stream()`` (messages in) to the first text
     piece out of the iterator. generate: a separate ``max_new_tokens=1`` call, timed from the
     chat template (messages in) to its return: prefill + one token + generate's set-up.
   - decode tokens/s: (new tokens - 1) / (time from first to last token): the Engine's own
     ReplyStats.tokens_per_second; for generate, total time minus its TTFT.
   - end-to-end tokens/s: new tokens / total time, messages in to the last token out.
2. --concurrency requests (default 8) submitted at once from as many threads to one Engine,
   which batches whatever is waiting: aggregate tokens/s = all new tokens / (last reply done -
   first submit), against the Engine's own batch-1 end-to-end tokens/s.

By default the model is a randomly initialised preset (no training needed: only speed is
measured) with a tokenizer trained on the bitext text; --model DIR benchmarks a saved model.

    python bench/generate.py                      # tiny preset on CPU, ~40 s on 2 cores
    python bench/generate.py --model ~/.appkit/models/support --device cuda --prompts 64
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from appkit.engine.engine import Engine
from appkit.engine.sampling import GREEDY

from common import DEFAULT_DATA, code_version  # bench/ is on sys.path when a script runs


class BenchEngine(Engine):
    """The product's Engine with no stop tokens (fixed-length replies) that records its batch sizes."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.stop_ids = frozenset()  # every reply runs to max_new_tokens, like generate(eos_token_id=None)
        self.batch_sizes: list[int] = []
        self.held = False  # while True, requests queue up but the worker thread is not started

    def _ensure_worker(self) -> None:
        if not self.held:
            super()._ensure_worker()

    def _prefill(self, batch: list[Any]) -> Any:
        self.batch_sizes.append(len(batch))
        return super()._prefill(batch)


def load_prompts(path: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` customer messages sampled from the csv files at ``path``, and all turn texts."""
    from appkit.data import read_history

    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not path.exists() or not files:
        print(f"error: data not found: {path} (pass --data FILE.csv or a folder of csv files)", file=sys.stderr)
        sys.exit(2)
    convs = [c for f in files for c in read_history(f)]
    users = [t.text for c in convs for t in c.turns if t.role == "user"]
    return random.Random(seed).sample(users, min(n, len(users))), [t.text for c in convs for t in c.turns]


def engine_once(engine: BenchEngine, messages: list[dict[str, str]], params: Any) -> dict[str, Any]:
    """One streamed reply, timed from the consumer's side."""
    t0 = time.perf_counter()
    stream = engine.stream(messages, params)
    first = None
    for _ in stream:
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    n = stream.stats.completion_tokens
    first = first or end
    return {"ttft": first - t0, "total": end - t0, "tokens": n, "text": stream.text,
            "submit": t0, "end": end, "engine_ttft": stream.stats.time_to_first_token_s,
            # From token times, not text pieces: a piece can be held back (a split UTF-8 character).
            "decode_tps": stream.stats.tokens_per_second}


def generate_once(model: Any, tok: Any, messages: list[dict[str, str]], gen_cfg: Any, n: int) -> tuple[float, Any]:
    """Messages in -> ``n`` new tokens out through plain transformers; returns (seconds, new ids)."""
    t0 = time.perf_counter()
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    enc = {k: v.to(model.device) for k, v in enc.items()}
    out = model.generate(**enc, generation_config=gen_cfg, max_new_tokens=n)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out[0, enc["input_ids"].shape[1] :]


def concurrent_round(engine: BenchEngine, prompts: list[str], params: Any) -> dict[str, Any]:
    """All prompts submitted together from one thread each; the Engine batches what is waiting."""
    gate = threading.Barrier(len(prompts))
    results: list[dict[str, Any]] = [{} for _ in prompts]

    def client(i: int) -> None:
        gate.wait()  # release every client at once, as a burst of users would
        results[i] = engine_once(engine, [{"role": "user", "content": prompts[i]}], params)

    before = len(engine.batch_sizes)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = max(r["end"] for r in results) - min(r["submit"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    return {"tokens": tokens, "seconds": span, "tokens_per_s": tokens / span,
            "batches": engine.batch_sizes[before:], "median_ttft": statistics.median(r["ttft"] for r in results)}


def queued_round(model: Any, tok: Any, prompts: list[str], params: Any) -> dict[str, Any]:
    """Best case: every request is already queued when a fresh Engine's worker first looks."""
    engine = BenchEngine(model, tok, name="bench-queued", max_batch=max(16, len(prompts)))
    engine.held = True
    t0 = time.perf_counter()
    streams = [engine.stream([{"role": "user", "content": p}], params) for p in prompts]
    engine.held = False
    engine._ensure_worker()
    tokens = 0
    for s in streams:  # each stream buffers its pieces, so reading them one after another is fine
        "".join(s)
        tokens += s.stats.completion_tokens
    span = time.perf_counter() - t0
    engine.close()
    return {"tokens": tokens, "seconds": span, "tokens_per_s": tokens / span, "batches": engine.batch_sizes}


def progress(label: str, i: int, n: int) -> None:
    end = "\n" if i == n or not sys.stderr.isatty() else ""
    print(f"\r  {label} {i}/{n}", end=end, file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bitext csv (or its folder): prompts, tokenizer")
    p.add_argument("--model", type=Path, default=None, help="a saved appkit model directory (default: random init)")
    p.add_argument("--preset", default="tiny", help="preset of the random model when --model is not given")
    p.add_argument("--prompts", type=int, default=16, help="batch-1 prompts (medians over these)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="concurrent rounds (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed replies per side first")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cudnn-sdp", action="store_true",
                   help="disable cuDNN attention (on an H100 with torch 2.11 it builds a plan per new KV length)")
    args = p.parse_args()
    if args.no_cudnn_sdp:
        torch.backends.cuda.enable_cudnn_sdp(False)
    if args.model is not None and not (args.model / "config.json").is_file():
        print(f"error: model not found: {args.model} (no config.json there)", file=sys.stderr)
        sys.exit(2)

    from appkit.model.io import quiet_transformers

    quiet_transformers()
    torch.set_num_threads(args.threads)
    need = args.prompts + args.warmup + args.rounds * args.concurrency
    print("setup: prompts, tokenizer, model ...", file=sys.stderr)
    prompts, texts = load_prompts(args.data, need, args.seed)
    warm, batch1, rest = prompts[: args.warmup], prompts[args.warmup : args.warmup + args.prompts], \
        prompts[args.warmup + args.prompts :]
    if args.model is not None:
        from appkit.model.io import load_model

        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32  # as Engine.load picks
        model, tok, _ = load_model(args.model, device=args.device, dtype=dtype)
        name = args.model.name
    else:
        from appkit.model.build import build_model
        from appkit.model.presets import get_preset
        from appkit.tokenizer import train_tokenizer

        tok = train_tokenizer(texts)
        model = build_model(get_preset(args.preset), tok, seed=args.seed).to(args.device)
        if args.device == "cuda":
            model = model.to(torch.bfloat16)  # the dtype Engine.load serves a saved model in on a GPU
        name = f"random {args.preset}"
    engine = BenchEngine(model, tok, name="bench", max_batch=max(16, args.concurrency))
    N = args.max_new_tokens
    params = dataclasses.replace(GREEDY, max_new_tokens=N)  # temperature 0, no penalty: pure argmax
    gen_cfg = copy.deepcopy(model.generation_config)
    gen_cfg.eos_token_id = None  # no early stop: exactly N tokens, like the Engine with no stop ids
    gen_cfg.do_sample, gen_cfg.temperature, gen_cfg.top_p, gen_cfg.top_k = False, None, None, None

    for text in warm:  # allocator, kernels, the Engine's worker thread, generate's first-call set-up
        m = [{"role": "user", "content": text}]
        engine_once(engine, m, params)
        generate_once(model, tok, m, gen_cfg, N)
        generate_once(model, tok, m, gen_cfg, 1)
    # Batched decode shapes too (a GPU picks and loads kernels per shape on first use).
    queued_round(model, tok, (warm * args.concurrency)[: args.concurrency], params)

    rows: list[dict[str, Any]] = []
    for i, text in enumerate(batch1, 1):
        m = [{"role": "user", "content": text}]
        # Alternate who goes first on a new prompt, so neither side always meets its length first.
        if i % 2:
            e = engine_once(engine, m, params)
        g_ttft, _ = generate_once(model, tok, m, gen_cfg, 1)  # first: as cold on this prompt as the Engine's
        g_total, g_ids = generate_once(model, tok, m, gen_cfg, N)
        if not i % 2:
            e = engine_once(engine, m, params)
        rows.append({"e": e, "g_total": g_total, "g_ttft": g_ttft, "g_tokens": len(g_ids),
                     "same": tok.decode(g_ids, skip_special_tokens=True) == e["text"]})
        progress("batch-1 prompts", i, len(batch1))

    med = statistics.median
    eng = {"ttft_s": med(r["e"]["ttft"] for r in rows),
           "decode_tokens_per_s": med(r["e"]["decode_tps"] for r in rows),
           "e2e_tokens_per_s": med(r["e"]["tokens"] / r["e"]["total"] for r in rows),
           "engine_reported_ttft_s": med(r["e"]["engine_ttft"] for r in rows)}
    gen = {"ttft_s": med(r["g_ttft"] for r in rows),
           "decode_tokens_per_s": med((r["g_tokens"] - 1) / max(r["g_total"] - r["g_ttft"], 1e-9) for r in rows),
           "e2e_tokens_per_s": med(r["g_tokens"] / r["g_total"] for r in rows)}
    token_counts = {(r["e"]["tokens"], r["g_tokens"]) for r in rows}

    rounds = []
    for k in range(args.rounds):
        rounds.append(concurrent_round(engine, rest[k * args.concurrency : (k + 1) * args.concurrency], params))
        progress(f"{args.concurrency}-concurrent rounds", k + 1, args.rounds)
    engine.close()
    agg = med(r["tokens_per_s"] for r in rounds)
    # The same prompts again, all queued before the worker starts: what batching can give when
    # the worker does not start on the first arrival alone.
    best = [queued_round(model, tok, rest[k * args.concurrency : (k + 1) * args.concurrency], params)
            for k in range(args.rounds)]
    best_agg = med(r["tokens_per_s"] for r in best)

    res: dict[str, Any] = {
        "bench": "generate", "code": code_version(), "cudnn_sdp": args.device == "cuda" and not args.no_cudnn_sdp, "model": name,
        "device": args.device, "threads": args.threads,
        "vocab": len(tok), "max_new_tokens": N, "prompts": len(rows),
        "new_tokens_engine_generate": sorted(token_counts), "same_text": sum(r["same"] for r in rows),
        "engine": {k: round(v, 4) for k, v in eng.items()}, "generate": {k: round(v, 4) for k, v in gen.items()},
        "ratio_decode": round(eng["decode_tokens_per_s"] / gen["decode_tokens_per_s"], 3),
        "ratio_e2e": round(eng["e2e_tokens_per_s"] / gen["e2e_tokens_per_s"], 3),
        "ratio_ttft_engine_over_generate": round(eng["ttft_s"] / gen["ttft_s"], 3),
        "concurrent": {"requests": args.concurrency, "rounds": args.rounds, "aggregate_tokens_per_s": round(agg, 1),
                       "per_round_tokens_per_s": [round(r["tokens_per_s"], 1) for r in rounds],
                       "batch_sizes_per_round": [r["batches"] for r in rounds],
                       "median_ttft_s": round(med(r["median_ttft"] for r in rounds), 4)},
        "ratio_concurrent_vs_batch1": round(agg / eng["e2e_tokens_per_s"], 3),
        "queued_best_case": {"aggregate_tokens_per_s": round(best_agg, 1),
                             "batch_sizes_per_round": [r["batches"] for r in best],
                             "ratio_vs_batch1": round(best_agg / eng["e2e_tokens_per_s"], 3)},
    }
    res["targets"] = {"engine/generate batch-1": {"value": res["ratio_decode"], "need": 1.0,
                                                  "met": res["ratio_decode"] >= 1.0},
                      "concurrent/batch-1": {"value": res["ratio_concurrent_vs_batch1"], "need": 3.0,
                                             "met": res["ratio_concurrent_vs_batch1"] >= 3.0}}
    print_table(res)
    print(json.dumps(res))


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    t = Table(title=f"generation - {res['model']} on {res['device']} ({res['threads']} threads), greedy, "
                    f"{res['max_new_tokens']} new tokens, median over {res['prompts']} prompts")
    for col in ("", "TTFT ms", "decode tok/s", "end-to-end tok/s"):
        t.add_column(col, justify="right" if col else "left")
    for key, name in (("engine", "appkit Engine, batch 1"), ("generate", "model.generate, batch 1")):
        r = res[key]
        t.add_row(name, f"{r['ttft_s'] * 1e3:.1f}", f"{r['decode_tokens_per_s']:,.1f}", f"{r['e2e_tokens_per_s']:,.1f}")
    c = res["concurrent"]
    t.add_row(f"Engine, {c['requests']} concurrent", f"{c['median_ttft_s'] * 1e3:.1f}", "",
              f"{c['aggregate_tokens_per_s']:,.1f} aggregate")
    b = res["queued_best_case"]
    t.add_row(f"Engine, {c['requests']} queued at once (best case)", "", "",
              f"{b['aggregate_tokens_per_s']:,.1f} aggregate")
    console.print(t)
    console.print(f"  Engine / generate: decode {res['ratio_decode']:.2f}x, end-to-end {res['ratio_e2e']:.2f}x, "
                  f"TTFT {res['ratio_ttft_engine_over_generate']:.2f}x generate's; identical greedy text on "
                  f"{res['same_text']}/{res['prompts']} prompts; new tokens (engine, generate): "
                  f"{res['new_tokens_engine_generate']}")
    console.print(f"  {c['requests']} concurrent: {res['ratio_concurrent_vs_batch1']:.2f}x the batch-1 end-to-end "
                  f"rate; batches formed per round: {c['batch_sizes_per_round']}; "
                  f"all queued first: {b['ratio_vs_batch1']:.2f}x in batches {b['batch_sizes_per_round']}")
    for k, v in res["targets"].items():
        console.print(f"  target {k}: {'met' if v['met'] else 'NOT met'} ({v['value']:.2f}x, need >= {v['need']}x)")


if __name__ == "__main__":
    main()
