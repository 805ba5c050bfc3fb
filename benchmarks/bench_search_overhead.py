"""Benchmark: the harness's own cost per search node, and its share of a real run's wall time.

Two measurements, each a ratio taken within the same run:

1. Synthetic (instant policy and reward model): MCTS and beam search through the real runner
   (registry, cache on disk, meter, strategy, grading, records). A node is one sampled next step
   (one policy sample, scored by the PRM); the harness time also covers measuring each problem's
   allowance (64 pool samples and their scores, cached). Reports nodes per second, microseconds per node, and
   the share of wall time spent inside the policy's and reward model's own code: the rest is
   harness overhead.
2. Tiny model (a random 2-layer Qwen2 on MATH-500, every strategy, budgets 2 and 4): the share of
   wall time spent outside the policy's and reward model's calls.

Usage:

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_search_overhead.py [--problems 50] [--limit 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import Runner, RunSpec
from prmbench.testing.tiny_model import build_tiny_model


class TimedRunner(Runner):
    """The real runner, with the policy's and reward models' own calls timed."""

    model_seconds = 0.0

    def _build(self) -> Any:
        tasks, policy, rms, strategies = super()._build()
        for component, method in [(policy, "generate"), *((rm, "score") for rm in rms.values())]:
            setattr(component, method, self._timed(getattr(component, method)))
        return tasks, policy, rms, strategies

    def _timed(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                TimedRunner.model_seconds += time.perf_counter() - t0
        return wrapper


def timed_run(spec: RunSpec, out: Path) -> tuple[float, float, int]:
    """Wall seconds, model-call seconds and nodes (policy samples charged to searches) of one run."""
    TimedRunner.model_seconds = 0.0
    t0 = time.perf_counter()
    TimedRunner(spec, build_registry(), out, log=lambda m: None).run()
    wall = time.perf_counter() - t0
    nodes = sum(r["spend"]["policy_calls"] for c in load_run(out).cells for r in c.records)
    return wall, TimedRunner.model_seconds, nodes


def main() -> None:
    """Run both measurements and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=50, help="synthetic problems (default 50)")
    ap.add_argument("--limit", type=int, default=3, help="MATH-500 problems of the tiny-model run (default 3)")
    ap.add_argument("--max-tokens", type=int, default=24)
    args = ap.parse_args()
    Runner.progress_enabled = staticmethod(lambda: False)
    work = Path(tempfile.mkdtemp(prefix="prmbench-bench-search-"))

    print("synthetic policy and PRM (instant), compute-matched budget 64, real runner (best of 3 runs):")
    warm = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=("mcts",), budgets=(2,),
                   policy="synthetic", limit=2)
    timed_run(warm, work / "warm-up")  # one-time imports (torch for the hardware record, grader)
    for strategy in ("mcts", "beam_search"):
        spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=(strategy,), budgets=(64,),
                       policy="synthetic", limit=args.problems)
        wall, model, nodes = min(timed_run(spec, work / f"syn-{strategy}-{i}") for i in range(3))
        print(f"  {strategy:12s} {nodes:6d} nodes in {wall:6.2f} s: {nodes / wall:8.0f} nodes/s, "
              f"{1e6 * wall / nodes:6.0f} us/node; inside policy+RM {model / wall:5.1%}, harness {1 - model / wall:5.1%}")

    data = Path(os.environ.get("PRMBENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    model_dir = build_tiny_model(work / "model")
    spec = RunSpec(tasks=("math500",), rms=("random",), budgets=(2, 4), policy=f"hf:{model_dir}", limit=args.limit,
                   strategies=("best_of_n", "majority_vote", "weighted_majority", "beam_search", "mcts", "dvts"),
                   max_tokens=args.max_tokens, data_files={"math500": str(data / "math500" / "test.jsonl")})
    TimedRunner.model_seconds = 0.0
    wall, model, nodes = timed_run(spec, work / "tiny")
    print(f"tiny Qwen2 on MATH-500 ({args.limit} problems, every strategy, budgets 2 and 4, max tokens {args.max_tokens}):")
    print(f"  wall {wall:.2f} s, inside policy+RM {model:.2f} s; outside model calls: {1 - model / wall:.1%} "
          f"(the weights load inside the first policy call; setup, caching, meter, search and grading outside)")


if __name__ == "__main__":
    main()
