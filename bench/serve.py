"""Serving speed: `appkit serve` vs `transformers serve` (default and --continuous-batching).

The same saved model directory is served by each server in turn, in its own process on
127.0.0.1 (never two servers at once: they would share the cores), and driven by the same
client: N concurrent streaming clients (default 1, 8 and 32), each sending requests back to back.

How the comparison is kept fair:
- the same model files (default: a randomly initialised ``tiny`` preset with a tokenizer trained
  on the bitext text, saved once with appkit's save_model; ``--model DIR`` for a trained one);
- the same requests: real customer messages from the bitext csv as one user turn, the same
  ``max_tokens``, ``temperature`` and ``top_p``, streamed over SSE with
  ``stream_options.include_usage``; appkit is also sent ``top_k=50, repetition_penalty=1.0``,
  the values `transformers serve` uses for this model (its generation_config defaults);
- tokens are the servers' own ``usage.completion_tokens`` (the streamed text re-tokenized by
  the model's tokenizer when a server sends no usage);
- time to first token (TTFT) is measured at the client, from sending the request to the first
  non-empty content delta; aggregate tokens/s = all tokens / (last reply's end - first request's
  start) of a level; each server first answers ``--warmup`` untimed requests;
- bounded: each level sends ``max(8, 2 x clients)`` requests and starts no new one after
  ``--max-seconds``; a request that fails, times out or breaks off is an error, a 429 is counted
  apart ("clean" when it has a Retry-After and OpenAI's error body);
- the machine may be shared: each level records the CPU seconds every other process used
  meanwhile (psutil), every server runs ``--rounds`` times (servers interleaved), and each level
  reports its least disturbed round; all rounds are in the JSON line.
After its levels, appkit also serves the same model as its support app: ``--store-clients``
customers (default 32) each open a conversation and send a message at once; every turn answered
200 must be in the store (message and reply), every refused one must have left nothing.

    python bench/serve.py                          # ~10-15 min on 2 CPU cores (transformers' default mode is slowest)
    python bench/serve.py --servers appkit --levels 1,8
    python bench/serve.py --model ~/.appkit/models/support --max-tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, REPO, code_version  # bench/ is on sys.path when a script runs

SERVERS = ("appkit", "transformers", "transformers-cb")
LABELS = {"appkit": "appkit serve", "transformers": "transformers serve",
          "transformers-cb": "transformers serve --continuous-batching"}


def make_model(data: Path, preset: str, out: Path) -> Path:
    """A random-init preset with a tokenizer trained on the data's text, saved as appkit saves models."""
    from appkit.data import read_history
    from appkit.model.build import build_model
    from appkit.model.io import save_model
    from appkit.model.presets import get_preset
    from appkit.tokenizer import train_tokenizer

    files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
    texts = [t.text for f in files for c in read_history(f) for t in c.turns]
    tok = train_tokenizer(texts)
    model = build_model(get_preset(preset), tok, seed=0)
    return save_model(model, tok, out, {"name": out.name, "preset": preset, "note": "random init (bench/serve.py)"})


def load_prompts(data: Path, n: int) -> list[str]:
    import random

    from appkit.data import read_history

    files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
    users = [t.text for f in files for c in read_history(f) for t in c.turns if t.role == "user"]
    return random.Random(0).sample(users, min(n, len(users)))


class ServerProcess:
    """One server in its own process group; stopped by its pid."""

    def __init__(self, kind: str, model: Path, port: int, home: Path) -> None:
        self.kind, self.model, self.port, self.home = kind, model, port, home
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "APPKIT_HOME": str(home),
               "APPKIT_DEVICE": "cpu", "APPKIT_SAFETY_BACKEND": "lexicon"}
        env.pop("APPKIT_DATABASE_URL", None)
        if kind == "appkit":
            cmd = [sys.executable, "-m", "appkit", "serve", "--port", str(port), "--app", "support",
                   "--model", str(model)]
            self.health, self.model_id = "/healthz", model.name
        else:
            cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model), "--device", "cpu",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            if kind == "transformers-cb":
                cmd.append("--continuous-batching")
            self.health, self.model_id = "/health", str(model)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"error: {self.kind} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + self.health, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"error: {self.kind} did not answer {self.health} within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def one_request(client: Any, server: ServerProcess, prompt: str, args: argparse.Namespace, tok: Any) -> dict[str, Any]:
    """One streamed chat completion, timed at the client."""
    body: dict[str, Any] = {"model": server.model_id, "messages": [{"role": "user", "content": prompt}],
                            "stream": True, "stream_options": {"include_usage": True}, "max_tokens": args.max_tokens,
                            "temperature": args.temperature, "top_p": args.top_p}
    if server.kind == "appkit":
        body.update(top_k=50, repetition_penalty=1.0)
    start = time.perf_counter()
    first, text, usage = None, [], None
    try:
        async with client.stream("POST", server.url + "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                raw = await r.aread()
                clean = r.status_code == 429 and "retry-after" in r.headers and b'"error"' in raw
                return {"status": r.status_code, "clean": clean, "start": start, "end": time.perf_counter()}
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    return {"status": "stream_error", "start": start, "end": time.perf_counter()}
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        first = first or time.perf_counter()
                        text.append(piece)
    except Exception as e:  # a broken stream or a timeout is an error of the server under test
        return {"status": type(e).__name__, "start": start, "end": time.perf_counter()}
    end = time.perf_counter()
    tokens = usage["completion_tokens"] if usage else len(tok.encode("".join(text), add_special_tokens=False))
    return {"status": 200, "start": start, "end": end, "ttft": (first or end) - start, "tokens": tokens}


class CpuWatch:
    """CPU seconds used during a level by everything on the machine but this bench and its server,
    and the seconds the hypervisor gave this machine's CPUs to others (steal).

    The machine is shared: a figure measured while other work ran is not the server's own.
    """

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        import psutil

        t = psutil.cpu_times()  # the whole machine, all CPUs summed
        busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
        me = psutil.Process()
        ours = 0.0
        for proc in (me, *me.children(recursive=True)):  # the server is a child of this process
            try:
                c = proc.cpu_times()
                ours += c.user + c.system
            except psutil.Error:
                pass
        return busy, ours, getattr(t, "steal", 0.0)

    def others(self) -> tuple[float, float]:
        busy, ours, steal = self._sample()
        return max(0.0, (busy - self.start[0]) - (ours - self.start[1])), steal - self.start[2]


async def run_level(server: ServerProcess, clients: int, prompts: list[str], args: argparse.Namespace, tok: Any) -> dict[str, Any]:
    """``clients`` concurrent clients sending ``max(8, 2 x clients)`` requests in all."""
    import httpx

    total = max(8, 2 * clients)
    per_client = [total // clients + (i < total % clients) for i in range(clients)]
    results: list[dict[str, Any]] = []
    watch = CpuWatch()
    stop_at = time.perf_counter() + args.max_seconds
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as client:

        async def worker(i: int) -> None:
            for k in range(per_client[i]):
                if time.perf_counter() > stop_at:
                    return
                prompt = prompts[(i * 7 + k) % len(prompts)]
                results.append(await one_request(client, server, prompt, args, tok))

        await asyncio.gather(*(worker(i) for i in range(clients)))
    summary = summarize(clients, total, results)
    others, steal = watch.others()
    summary["other_cpu_s"], summary["steal_s"] = round(others, 2), round(steal, 2)
    return summary


def summarize(clients: int, planned: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    ok = [r for r in results if r["status"] == 200]
    span = max(r["end"] for r in results) - min(r["start"] for r in results) if results else 0.0
    tokens = sum(r["tokens"] for r in ok)
    ttft = [r["ttft"] for r in ok]
    errors: dict[str, int] = {}
    for r in results:
        if r["status"] != 200 and not (r["status"] == 429 and r.get("clean")):
            errors[str(r["status"])] = errors.get(str(r["status"]), 0) + 1
    return {"clients": clients, "planned": planned, "sent": len(results), "ok": len(ok), "tokens": tokens,
            "seconds": round(span, 3), "tokens_per_s": round(tokens / span, 1) if span else 0.0,
            "ttft_p50_ms": round(float(np.percentile(ttft, 50)) * 1000, 1) if ttft else None,
            "ttft_p95_ms": round(float(np.percentile(ttft, 95)) * 1000, 1) if ttft else None,
            "clean_429": sum(r["status"] == 429 and bool(r.get("clean")) for r in results), "errors": errors}


async def store_check(server: ServerProcess, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """``n`` customers post at once to the support app; compare the answers with the store."""
    import httpx

    from appkit.config import load_settings
    from appkit.store import open_store

    async with httpx.AsyncClient(base_url=server.url, timeout=args.timeout,
                                 limits=httpx.Limits(max_connections=n + 4)) as client:
        convs = [(await client.post("/v1/conversations", json={})).json()["id"] for _ in range(n)]

        async def post(conv: int) -> int:
            r = await client.post(f"/v1/conversations/{conv}/messages",
                                  json={"content": "where is my order?", "stream": False, "max_tokens": args.max_tokens})
            return r.status_code

        statuses = await asyncio.gather(*(post(c) for c in convs))
    with open_store(load_settings(home=server.home)) as store:
        kept = {c: store.messages(c) for c in convs}
    answered = [c for c, s in zip(convs, statuses) if s == 200]
    refused = [c for c, s in zip(convs, statuses) if s != 200]
    lost = [c for c in answered if [m.role for m in kept[c]][:2] != ["user", "assistant"]]
    half = [c for c in refused if kept[c]]
    return {"customers": n, "answered": len(answered), "refused": len(refused),
            "statuses": sorted(set(statuses)), "lost": len(lost), "half_written": len(half)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bitext csv (or its folder): prompts, tokenizer")
    p.add_argument("--model", type=Path, default=None, help="a saved model directory (default: random-init --preset)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    p.add_argument("--levels", default="1,8,32", help="concurrent clients per level")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--max-seconds", type=float, default=150, help="no new request after this long in a level")
    p.add_argument("--timeout", type=float, default=300, help="seconds one request may take")
    p.add_argument("--store-clients", type=int, default=32, help="customers in appkit's store check (0: skip)")
    p.add_argument("--port", type=int, default=8790)
    p.add_argument("--rounds", type=int, default=2,
                   help="run every server this many times; each level reports its least disturbed round")
    args = p.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        raise SystemExit(f"error: unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if not args.data.exists():
        raise SystemExit(f"error: data not found: {args.data} (pass --data FILE.csv or a folder of csv files)")
    levels = [int(x) for x in args.levels.split(",")]

    import torch

    from appkit.model.io import load_model

    work = Path(tempfile.mkdtemp(prefix="appkit-bench-serve-"))
    print("setup: prompts, model ...", file=sys.stderr)
    model_dir = args.model or make_model(args.data, args.preset, work / f"bench-{args.preset}")
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"error: model not found: {model_dir} (no config.json there)")
    _, tok, _ = load_model(model_dir)
    prompts = load_prompts(args.data, 200)
    home = work / "home"
    _register_support(home, model_dir)

    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {str(c): [] for c in levels} for kind in servers}
    store: dict[str, Any] | None = None
    for round_ in range(args.rounds):
        for i, kind in enumerate(servers):
            print(f"round {round_ + 1}/{args.rounds}, {LABELS[kind]}: starting ...", file=sys.stderr)
            server = ServerProcess(kind, model_dir, args.port + i, home)
            try:
                server.wait_ready()
                for k in range(args.warmup):
                    asyncio.run(_warm(server, prompts[k], args, tok))
                for clients in levels:
                    print(f"  {clients} concurrent clients ...", file=sys.stderr)
                    rounds[kind][str(clients)].append(asyncio.run(run_level(server, clients, prompts, args, tok)))
                if kind == "appkit" and args.store_clients and store is None:
                    print(f"  store check: {args.store_clients} customers at once ...", file=sys.stderr)
                    store = asyncio.run(store_check(server, args.store_clients, args))
            finally:
                server.stop()
    # Per level, the round least disturbed by other work on the machine (the least CPU used by others).
    results: dict[str, Any] = {kind: {c: min(runs, key=lambda r: r["other_cpu_s"]) for c, runs in levels_.items()}
                               for kind, levels_ in rounds.items()}
    if store is not None:
        results["appkit_store"] = store

    res: dict[str, Any] = {"bench": "serve", "code": code_version(), "model": str(args.model or f"random {args.preset}"),
                           "device": "cpu", "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                           "max_tokens": args.max_tokens, "levels": levels, "rounds": args.rounds, "results": results,
                           "all_rounds": rounds}
    res["targets"] = targets(results)
    print_table(res)
    print(json.dumps(res))


async def _warm(server: ServerProcess, prompt: str, args: argparse.Namespace, tok: Any) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=args.timeout) as client:
        await one_request(client, server, prompt, args, tok)


def _register_support(home: Path, model_dir: Path) -> None:
    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings(home=home)) as store:
        store.register_model("bench-support", "support", str(model_dir), status="active", replace=True)


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, where the runs measured what they need."""
    out: dict[str, Any] = {}
    ours = results.get("appkit", {}).get("8")
    for kind, need in (("transformers", 3.0), ("transformers-cb", 1.2)):
        theirs = results.get(kind, {}).get("8")
        if ours and theirs and theirs["tokens_per_s"]:
            ratio = ours["tokens_per_s"] / theirs["tokens_per_s"]
            out[f"8 clients: tokens/s vs {kind}"] = {"value": round(ratio, 2), "need": f">= {need}x", "met": ratio >= need}
    if ours and ours["ttft_p95_ms"] is not None:
        out["8 clients: TTFT p95"] = {"value": ours["ttft_p95_ms"], "need": "< 250 ms", "met": ours["ttft_p95_ms"] < 250}
    at32 = results.get("appkit", {}).get("32")
    if at32:
        out["32 clients: only clean 429s"] = {"value": at32["errors"] or "none", "need": "no other error",
                                              "met": not at32["errors"]}
    store = results.get("appkit_store")
    if store:
        out["store: nothing lost"] = {"value": f"{store['lost']} lost, {store['half_written']} half-written",
                                      "need": "0", "met": store["lost"] == store["half_written"] == 0}
    return out


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=130)
    t = Table(title=f"serving {res['model']} on {res['cpus']} CPUs, {res['max_tokens']} max new tokens, streaming")
    for col in ("server", "clients", "ok / sent", "tokens/s", "TTFT p50 ms", "TTFT p95 ms", "429 (clean)", "errors",
                "others' CPU s"):
        t.add_column(col, justify="left" if col == "server" else "right")
    for kind, levels in res["results"].items():
        if kind == "appkit_store":
            continue
        for clients, r in levels.items():
            t.add_row(LABELS[kind], clients, f"{r['ok']} / {r['sent']}", f"{r['tokens_per_s']:,.1f}",
                      _ms(r["ttft_p50_ms"]), _ms(r["ttft_p95_ms"]), str(r["clean_429"]),
                      ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "-", f"{r['other_cpu_s']:.1f}")
    console.print(t)
    store = res["results"].get("appkit_store")
    if store:
        console.print(f"  store check: {store['customers']} customers at once, {store['answered']} answered, "
                      f"{store['refused']} refused (statuses {store['statuses']}); lost {store['lost']}, "
                      f"half-written {store['half_written']}")
    for name, v in res["targets"].items():
        console.print(f"  target {name}: {'met' if v['met'] else 'NOT met'} ({v['value']}, need {v['need']})")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


if __name__ == "__main__":
    main()
