"""Step-level evaluation throughput (solutions/s): the step runner's batched path vs one solution at a time.

Both sides score the same ProcessBench solutions (real, varied lengths) with the same loaded tiny
PRM checkpoint (a family's real architecture and tokenizer, random weights, built on the spot):

- batched: `prmbench.step_runner.score_step_items`, what `prmbench run --tasks processbench_*`
  executes: chunks of 64 solutions across questions through the reward model's batched engine
  (`score_items`), records and an (empty, in-memory) score cache included;
- one at a time: `rm.score(task, problem, [steps])` per solution, the loop a user script would write.

Sides are timed alternately after a warm-up each (so load from other processes hits both alike);
the figures are medians over `--repeats`. The scores of both sides are checked to agree (1e-4),
and the ProcessBench metrics are computed from the batched records.

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_step_eval.py --family qwen_prm --solutions 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from prmbench.plugins import build_registry
from prmbench.step_runner import _public_problem, score_step_items
from prmbench.testing.tiny_rm import FAMILIES, build_tiny_rm


def main() -> int:
    """Run the benchmark and print solutions/s of each side and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=[f for f in FAMILIES if f != "orm"], default="qwen_prm")
    ap.add_argument("--task", default="processbench_math")
    ap.add_argument("--solutions", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    reg = build_registry()
    task = reg.build("task", args.task)
    task.name = args.task
    items = task.select(task.load_items(), args.solutions)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_rm(Path(tmp) / args.family, args.family, hidden=args.hidden, layers=args.layers, seed=0)
        rm = reg.build("rm", f"{args.family}:{ckpt}", {"batch_size": args.batch_size})

        def batched() -> list[list[float]]:
            return [r["step_scores"] for r in score_step_items(task, rm, items)]

        def single() -> list[list[float]]:
            return [list(rm.score(task, _public_problem(task, it.question), [list(it.steps)])[0].step_scores)
                    for it in items]

        out_b, out_s = batched(), single()  # warm-up, and the agreement check
        worst = max(abs(a - b) for x, y in zip(out_b, out_s) for a, b in zip(x, y))
        rates: dict[str, list[float]] = {"batched": [], "single": []}
        for _ in range(args.repeats):
            for name, fn in (("single", single), ("batched", batched)):
                t0 = time.perf_counter()
                fn()
                rates[name].append(len(items) / (time.perf_counter() - t0))
        _, metrics = task.evaluate(score_step_items(task, rm, items))
    steps = sum(len(it.steps) for it in items)
    b, s = statistics.median(rates["batched"]), statistics.median(rates["single"])
    print(f"{args.family} (tiny: {args.layers} layers, hidden {args.hidden}) on {len(items)} {args.task} solutions "
          f"({steps} steps), CPU, {args.threads} thread(s), batch_size {args.batch_size}")
    print(f"  one at a time : {s:8.1f} solutions/s  (runs: {', '.join(f'{x:.1f}' for x in rates['single'])})")
    print(f"  batched       : {b:8.1f} solutions/s  (runs: {', '.join(f'{x:.1f}' for x in rates['batched'])})")
    print(f"  ratio batched / one at a time: {b / s:.2f}x; largest score difference {worst:.1e}; "
          f"f1 {metrics['f1']:.3f}, auroc {metrics['auroc']:.3f}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
