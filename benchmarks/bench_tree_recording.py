"""Benchmark: the cost of recording search trees (record_tree, on by default).

Beam search, DVTS and MCTS on synthetic problems (instant policy and PRM: the harness's own cost
is all there is, so this is the worst case; with a real model the share is far smaller) through
the real runner, with record_tree on and off, rounds interleaved, medians. Reports the ratio of
search wall seconds (sum of the records' `info.wall_seconds`) on/off, the whole run's wall time
ratio (both noisy on shared cores), the time spent inside the recorder's own methods as a share of
search time (timed directly, the steadier figure), and the size of trees.jsonl per problem.

Usage:

    python benchmarks/bench_tree_recording.py [--problems 100] [--budget 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prmbench.plugins import build_registry
from prmbench.results import CELLS_DIR, TREES_FILE, load_run
from prmbench.runner import Runner, RunSpec
from prmbench.strategies import tree as tree_mod

RECORDER_SECONDS = [0.0]


def _timed(fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            RECORDER_SECONDS[0] += time.perf_counter() - t0
    return wrapper


for _name in ("__init__", "add", "set_stats", "finish"):
    setattr(tree_mod.TreeRecorder, _name, _timed(getattr(tree_mod.TreeRecorder, _name)))

STRATEGIES = ("beam_search", "dvts", "mcts")


def one(tmp: Path, registry, name: str, record: bool, problems: int, budget: int) -> tuple[float, float, int]:
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=STRATEGIES, budgets=(budget,),
                   policy="synthetic", limit=problems, seed=0, strategy_args={"record_tree": record})
    t0 = time.perf_counter()
    out = Runner(spec, registry, tmp / name, log=lambda m: None).run()
    wall = time.perf_counter() - t0
    run = load_run(out)
    search = sum(r["info"]["wall_seconds"] for c in run.cells for r in c.records)
    size = sum((out / CELLS_DIR / c.id / TREES_FILE).stat().st_size for c in run.cells
               if (out / CELLS_DIR / c.id / TREES_FILE).exists())
    return search, wall, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-gc", action="store_true", help="disable Python's cyclic garbage collector in both arms")
    a = ap.parse_args()
    if a.no_gc:
        import gc

        gc.disable()
    registry = build_registry(strict=True)
    on_s, off_s, on_w, off_w, size, share = [], [], [], [], 0, []
    with tempfile.TemporaryDirectory() as tmp:
        one(Path(tmp), registry, "warm", True, 5, a.budget)
        for i in range(a.rounds):
            for record in ((False, True) if i % 2 == 0 else (True, False)):
                RECORDER_SECONDS[0] = 0.0
                s, w, b = one(Path(tmp), registry, f"{record}-{i}", record, a.problems, a.budget)
                (on_s if record else off_s).append(s)
                (on_w if record else off_w).append(w)
                size = b if record else size
                if record:
                    share.append(RECORDER_SECONDS[0] / s)
    ms, mw = statistics.median(on_s) / statistics.median(off_s), statistics.median(on_w) / statistics.median(off_w)
    n = a.problems * len(STRATEGIES)
    print(f"{n} searches ({', '.join(STRATEGIES)}, budget {a.budget}, {a.rounds} rounds)")
    print(f"search seconds: off {statistics.median(off_s):.3f} s, on {statistics.median(on_s):.3f} s -> ratio {ms:.3f}")
    print(f"run wall time: off {statistics.median(off_w):.2f} s, on {statistics.median(on_w):.2f} s -> ratio {mw:.3f}")
    print(f"inside the recorder: {100 * statistics.median(share):.2f}% of search seconds")
    print(f"trees.jsonl: {size / n / 1024:.1f} KiB per problem")


if __name__ == "__main__":
    main()
