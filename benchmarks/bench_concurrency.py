"""Benchmark: concurrent search (`--concurrency K`) vs one problem at a time, and shared-prompt
prefill on vs off.

1. The matrix best_of_n, beam_search, mcts and dvts (random RM, budget 4) on the first
   `--problems` MATH-500 problems with a tiny random Qwen2 model (as `python -m prmbench.testing
   tiny-model` builds it), each run in a fresh folder (no cache shared), at `--concurrency 1` and
   `--concurrency K`, interleaved `--repeats` times so machine load hits both alike. Reports the
   median wall time of each, their ratio, and whether the records are identical (timing fields
   aside).
2. A 16-sample pool of one problem (one request, n=16) with the hf policy's shared prefill (each
   distinct prompt prefilled once per batch, its KV rows shared) vs every row prefilled on its own,
   interleaved, identical tokens checked.

Usage:

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_concurrency.py [--problems 16] [--k 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from prmbench.plugins import build_registry
from prmbench.runner import Runner, RunSpec
from prmbench.testing.tiny_model import build_tiny_model

STRATEGIES = ("best_of_n", "beam_search", "mcts", "dvts")


def records(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every cell's records in file order, without measured wall-clock fields."""
    out = {}
    for f in sorted((run_dir / "cells").glob("*/samples.jsonl")):
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        for r in rows:
            r["info"].pop("wall_seconds", None)
            r["spend"].pop("seconds", None)
        out[f.parent.name] = rows
    return out


def timed_run(spec: RunSpec, out: Path, k: int) -> tuple[float, dict[str, float]]:
    """Wall seconds of one run at concurrency k, and of its two phases: the shared sample pool
    (until the runner logs it ready) and the rest (searches, grading, records)."""
    marks: list[float] = []
    t0 = time.perf_counter()
    Runner(spec, build_registry(), out, log=lambda m: marks.append(time.perf_counter()) if "pool of" in m else None,
           concurrency=k).run()
    total = time.perf_counter() - t0
    pool = (marks[0] - t0) if marks else 0.0
    return total, {"pool": pool, "search": total - pool}


def bench_concurrency(model: Path, data: Path, work: Path, problems: int, k: int, repeats: int,
                      max_tokens: int, batch_size: int) -> None:
    spec = RunSpec(tasks=("math500",), rms=("random",), strategies=STRATEGIES, budgets=(4,),
                   policy=f"hf:{model}", limit=problems, max_tokens=max_tokens,
                   policy_args={"batch_size": batch_size},
                   data_files={"math500": str(data / "math500" / "test.jsonl")})
    times: dict[int, list[float]] = {1: [], k: []}
    phases: dict[int, list[dict[str, float]]] = {1: [], k: []}
    recs: dict[int, Any] = {}
    for rep in range(repeats):
        for conc in (1, k) if rep % 2 == 0 else (k, 1):
            out = work / f"run-k{conc}-{rep}"
            total, parts = timed_run(spec, out, conc)
            times[conc].append(total)
            phases[conc].append(parts)
            recs.setdefault(conc, records(out))
            print(f"  repeat {rep}: concurrency {conc:>2}: {total:.1f}s "
                  f"({', '.join(f'{n} {v:.2f}s' for n, v in parts.items())})", flush=True)
    one, many = statistics.median(times[1]), statistics.median(times[k])
    for name in phases[1][0]:
        a = statistics.median(p.get(name, 0.0) for p in phases[1])
        b = statistics.median(p.get(name, 0.0) for p in phases[k])
        print(f"  phase {name}: concurrency 1 {a:.2f}s, concurrency {k} {b:.2f}s"
              + (f" -> {a / b:.2f}x" if b > 0 else ""))
    same = recs[1] == recs[k]
    n_records = sum(len(v) for v in recs[1].values())
    print(f"matrix {','.join(STRATEGIES)} x {problems} problems (budget 4, --max-tokens {max_tokens}, "
          f"batch_size {batch_size}): concurrency 1 {one:.1f}s, concurrency {k} {many:.1f}s -> "
          f"{one / many:.2f}x; records identical: {same} ({n_records} records)")


def bench_prefill(model: Path, data: Path, repeats: int, max_tokens: int) -> None:
    from prmbench.policies.hf import HFPolicy
    from prmbench.tasks.math500 import Math500Task as Math500

    problem = Math500(data_file=str(data / "math500" / "test.jsonl")).load()[0]
    policy = HFPolicy(str(model), batch_size=16)
    from prmbench.context import GenParams, ModelCalls
    from prmbench.cache import Cache

    calls = ModelCalls(Math500(data_file=str(data / "math500" / "test.jsonl")), policy, Cache(None),
                       GenParams(max_tokens=max_tokens), 0)
    req = calls.request(problem, n=16)
    policy.generate([req])  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    outs: dict[bool, Any] = {}
    for rep in range(repeats * 2):
        for shared in (True, False) if rep % 2 == 0 else (False, True):
            policy.share_prefill = shared
            t0 = time.perf_counter()
            gens = policy.generate_detailed([req])[0]
            times[shared].append(time.perf_counter() - t0)
            outs.setdefault(shared, [d.token_ids for d in gens])
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"16-sample pool, prompt {len(gens[0].prompt_ids)} tokens, --max-tokens {max_tokens}: shared prefill "
          f"{on * 1000:.0f} ms, per-row prefill {off * 1000:.0f} ms -> {off / on:.2f}x; identical tokens: "
          f"{outs[True] == outs[False]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--k", type=int, default=16, help="the concurrency compared with 1")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64, help="hf policy rows per batch (both runs)")
    ap.add_argument("--skip", choices=["concurrency", "prefill"], action="append", default=[])
    args = ap.parse_args()
    data = Path(os.environ.get("PRMBENCH_DATA_DIR", "../shared/data"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_tiny_model(work / "model", seed=0)
        if "concurrency" not in args.skip:
            bench_concurrency(model, data, work, args.problems, args.k, args.repeats, args.max_tokens, args.batch_size)
        if "prefill" not in args.skip:
            bench_prefill(model, data, args.repeats * 2, 64)


if __name__ == "__main__":
    main()
