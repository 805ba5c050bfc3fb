"""Benchmark: how closely each cell's spend matches its compute-matched allowance (unit n).

For every (strategy, N) it reports the cell's mean spend / mean allowance (the worst over the
run's reward models), the worst single record's spend / allowance, and how many records broke
the per-record bound (spend - allowance <= info.max_unit_flops: one sample plus its score). All
figures are recomputed from the records of the run folders given, or of a main-job-like matrix
run on the spot in the synthetic environment (every strategy under its PRM and the oracle,
--max-tokens 48, budgets 2, 4, 8, 16).

Usage:

    python benchmarks/bench_compute_matching.py                      # synthetic matrix
    python benchmarks/bench_compute_matching.py runs/main-2026...    # e.g. the main job's folder
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner

STRATEGIES = ("best_of_n", "majority_vote", "weighted_majority", "beam_search", "mcts", "dvts", "mcts_rollout")


def synthetic_run(out: Path, problems: int) -> Path:
    """The main-job-like matrix in the synthetic environment (5% of steps ramble to the limit)."""
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm", "oracle"), strategies=STRATEGIES,
                   budgets=(2, 4, 8, 16), policy="synthetic", limit=problems, seed=0, max_tokens=48,
                   policy_args={"ramble": 0.05})
    return Runner(spec, build_registry(strict=True), out, log=lambda m: None).run()


def matching_table(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (strategy, budget): worst-over-RMs mean spend / allowance, worst record, bound breaks."""
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.get("allowance_flops"):
            cells[(r["strategy"], r["rm"], r["budget"])].append(r)
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for (strategy, _, n), recs in cells.items():
        ratio = sum(r["spend"]["flops"] for r in recs) / sum(r["allowance_flops"] for r in recs)
        worst = max(r["spend"]["flops"] / r["allowance_flops"] for r in recs)
        broken = sum(r["spend"]["flops"] - r["allowance_flops"] > r["info"].get("max_unit_flops", 0.0) * (1 + 1e-9)
                     for r in recs)
        row = rows.setdefault((strategy, n), {"strategy": strategy, "budget": n, "mean_ratio": ratio,
                                              "worst_record": worst, "bound_broken": 0, "records": 0})
        if abs(ratio - 1) > abs(row["mean_ratio"] - 1):
            row["mean_ratio"] = ratio
        row["worst_record"] = max(row["worst_record"], worst)
        row["bound_broken"] += broken
        row["records"] += len(recs)
    return sorted(rows.values(), key=lambda x: (x["strategy"], x["budget"]))


def main(argv: list[str] | None = None) -> int:
    """Print the table for the given run folders (default: a fresh synthetic matrix)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path, help="run folders (default: run the synthetic matrix)")
    ap.add_argument("--problems", type=int, default=40, help="synthetic problems (default 40)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or [synthetic_run(Path(tmp) / "run", args.problems)]
        records = [r for run in runs for c in load_run(run).cells for r in c.records]
        print("| strategy | N | mean spend / allowance (worst RM) | worst record | records over the bound |")
        print("| --- | --- | --- | --- | --- |")
        for row in matching_table(records):
            print(f"| {row['strategy']} | {row['budget']} | {row['mean_ratio']:.3f} | {row['worst_record']:.3f} | "
                  f"{row['bound_broken']} / {row['records']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
