"""Benchmark: one shared sample pool vs per-cell sampling for pool strategies.

Runs the matrix {best_of_n, majority_vote} x {oracle, random} x budgets {1, 4, 16} on the first
K MATH-500 problems with a tiny random Qwen2-architecture model, twice:

- shared: one `prmbench run` (the runner draws one pool of 16 per problem for every cell);
- per-cell: every cell in a run directory of its own (what a harness without pool sharing does).

Reports wall seconds and samples generated for both and their ratio. Usage:

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_pool_sharing.py [--limit 4] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner
from prmbench.testing.tiny_model import build_tiny_model


def _generated(run_dirs: list[Path]) -> int:
    import sqlite3

    return sum(sqlite3.connect(d / "cache.sqlite").execute("SELECT COUNT(*) FROM kv").fetchone()[0] for d in run_dirs)


def main() -> None:
    """Run both variants and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()
    data = Path(os.environ.get("PRMBENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    work = Path(tempfile.mkdtemp(prefix="prmbench-bench-"))
    model = build_tiny_model(work / "model")
    registry = build_registry()
    base = dict(tasks=("math500",), rms=("oracle", "random"), strategies=("best_of_n", "majority_vote"),
                budgets=(1, 4, 16), policy=f"hf:{model}", limit=args.limit, max_tokens=args.max_tokens,
                data_files={"math500": str(data / "math500" / "test.jsonl")})
    Runner.progress_enabled = staticmethod(lambda: False)
    quiet = lambda msg: None  # noqa: E731

    t0 = time.perf_counter()
    shared = Runner(RunSpec(**base), registry, work / "shared", log=quiet).run()
    t_shared = time.perf_counter() - t0

    cells = [(s, r, b) for s in ("best_of_n", "majority_vote") for r in (("oracle", "random") if s == "best_of_n" else ("oracle",))
             for b in (1, 4, 16)]
    t0 = time.perf_counter()
    dirs = []
    for i, (s, r, b) in enumerate(cells):
        spec = RunSpec(**{**base, "strategies": (s,), "rms": (r,), "budgets": (b,)})
        dirs.append(Runner(spec, registry, work / f"cell{i}", log=quiet).run())
    t_cells = time.perf_counter() - t0

    acc_shared = {(c.rm, c.strategy, c.budget): c.metrics["accuracy"] for c in load_run(shared).cells}
    print(f"problems: {args.limit}, max tokens: {args.max_tokens}, cells: {len(acc_shared)}")
    print(f"shared pool : {t_shared:8.1f} s, cache entries {_generated([shared])}")
    print(f"per cell    : {t_cells:8.1f} s, cache entries {_generated(dirs)}")
    print(f"speed-up of pool sharing: {t_cells / t_shared:.2f}x")


if __name__ == "__main__":
    main()
