"""Per-request overhead of the openai backend (through a real `transformers serve`) vs in-process hf.

Both sides sample from the same tiny random Qwen2 model folder (built on the spot) on the CPU,
the same requests: `--requests` single-sample greedy requests over distinct prompts, so both
generate exactly the same tokens (checked). The hf side is `HFPolicy` with batch_size 1 (one
request at a time, as the server does them: `transformers serve` runs one `generate` at a time
without continuous batching); the openai side is `OpenAIPolicy` with one request in flight.
A second hf line uses its default batching (all requests decoded together), the in-process
backend's real advantage on a CPU. Reports seconds per request and the ratios (median over
`--repeats` interleaved rounds, after one warm-up each).

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_openai_vs_hf.py --requests 16 --max-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from prmbench.policies.hf import HFPolicy  # noqa: E402
from prmbench.policies.launcher import ManagedServer, free_port, transformers_serve_command  # noqa: E402
from prmbench.policies.openai import OpenAIPolicy  # noqa: E402
from prmbench.testing import build_tiny_model  # noqa: E402
from prmbench.types import GenRequest, Message  # noqa: E402


def _requests(n: int, max_tokens: int) -> list[GenRequest]:
    qs = [f"What is {7 * i + 3} times {i + 11}? Think step by step and put the answer in \\boxed{{}}." for i in range(n)]
    return [GenRequest(messages=(Message("user", q),), n=1, temperature=0.0, max_tokens=max_tokens, seed=i)
            for i, q in enumerate(qs)]


def _timed(fn) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    """Run the benchmark and print one line per side plus the ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads on both sides (OMP_NUM_THREADS)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="prmbench-bench-openai-") as tmp:
        model = build_tiny_model(Path(tmp) / "model", seed=0)
        cmd = transformers_serve_command(str(model), free_port(), dtype="float32", device="cpu")
        server = ManagedServer(cmd, Path(tmp) / "serve.log", startup_timeout=300,
                               env={"OMP_NUM_THREADS": str(args.threads)})
        t0 = time.perf_counter()
        server.start()
        startup = time.perf_counter() - t0
        try:
            remote = OpenAIPolicy(str(model), base_url=cmd.base_url, max_concurrent_requests=1)
            hf_one = HFPolicy(str(model), batch_size=1, dtype="float32", device="cpu")
            hf_all = HFPolicy(str(model), batch_size=max(1, args.requests), dtype="float32", device="cpu")
            reqs = _requests(args.requests, args.max_tokens)
            sides = {"openai (transformers serve, 1 in flight)": lambda: remote.generate(reqs),
                     "hf in-process, batch_size 1": lambda: hf_one.generate(reqs),
                     f"hf in-process, batch_size {args.requests}": lambda: hf_all.generate(reqs)}
            outs = {name: fn() for name, fn in sides.items()}  # warm-up
            times: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(args.repeats):
                for name, fn in sides.items():
                    dt, outs[name] = _timed(fn)
                    times[name].append(dt)
            strip = [[replace(g, seconds=0.0) for g in gens] for gens in outs[next(iter(sides))]]
            same = all([[replace(g, seconds=0.0) for g in gens] for gens in o] == strip for o in outs.values())
            tokens = sum(g.completion_tokens for gens in strip for g in gens)
            remote.close()
        finally:
            server.stop()
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med["hf in-process, batch_size 1"]
    print(f"server startup: {startup:.1f} s; {args.requests} greedy requests, {tokens} generated tokens per round, "
          f"identical outputs on all sides: {same}")
    for name, t in med.items():
        print(f"{name:42s} {1000 * t / args.requests:8.1f} ms/request  ({t / base:.2f}x the time of hf batch_size 1)")
    over = (med["openai (transformers serve, 1 in flight)"] - base) / args.requests
    print(f"openai overhead per request vs hf batch_size 1: {1000 * over:+.1f} ms "
          f"(ratio {med['openai (transformers serve, 1 in flight)'] / base:.2f})")
    print(json.dumps({"ms_per_request": {k: round(1000 * v / args.requests, 2) for k, v in med.items()},
                      "identical": same, "tokens": tokens}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
