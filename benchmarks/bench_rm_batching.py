"""Reward-model scoring throughput: the batched path vs a naive one-candidate-at-a-time loop.

Both sides use the same loaded tiny checkpoint (a family's real architecture, random weights,
built on the spot with `build_tiny_rm`) and the same candidates: real solutions from ProcessBench
(varied lengths). The batched side is `score_items` on all candidates (sorted by length, batches
under the row and token budgets); the naive side calls it once per candidate. Reports steps per
second of each and their ratio (the median over `--repeats` paired runs, after one warm-up) and
checks that both give the same scores (within 1e-4). A third line compares the batched path
with left padding and an explicit attention mask (what padded batches usually need) against the
default right padding, which needs no mask (see prmbench.reward_models.hf_rm).

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_rm_batching.py --family qwen_prm --candidates 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from prmbench.plugins import build_registry
from prmbench.testing.tiny_rm import FAMILIES, build_tiny_rm


def _candidates(data_dir: Path, n: int, max_steps: int | None) -> list[tuple[str, list[str]]]:
    rows = json.loads((data_dir / "processbench" / "math.json").read_text())
    return [(r["problem"], list(r["steps"])[:max_steps]) for r in rows[:n]]


def _paired_rates(naive_fn, batched_fn, steps: int, repeats: int) -> tuple[list[float], list[float], list, list]:
    """Steps/s of both sides, timed alternately (naive, batched, naive, ...) after one warm-up each,
    so load from other processes hits both sides alike."""
    naive_out, batched_out = naive_fn(), batched_fn()
    naive_rates, batched_rates = [], []
    for _ in range(repeats):
        for fn, rates in ((naive_fn, naive_rates), (batched_fn, batched_rates)):
            t0 = time.perf_counter()
            fn()
            rates.append(steps / (time.perf_counter() - t0))
    return naive_rates, batched_rates, naive_out, batched_out


def main() -> int:
    """Run the benchmark and print one result line per side plus the ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=FAMILIES, default="qwen_prm")
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-padding", type=float, default=None,
                    help="reward model's max_padding (default: its own, 0.05; 0.99 = batches limited only by size)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier on shared machines)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="keep only the first K steps of each solution (partial candidates, as step-wise search scores)")
    ap.add_argument("--data-dir", default=os.environ.get("PRMBENCH_DATA_DIR", "../shared/data"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    items = _candidates(Path(args.data_dir), args.candidates, args.max_steps)
    n_steps = sum(len(s) for _, s in items)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_rm(Path(tmp) / args.family, args.family, layers=args.layers, hidden=args.hidden)
        registry = build_registry()
        rm_args = {"batch_size": args.batch_size, "device": "cpu"}
        if args.max_padding is not None:
            rm_args["max_padding"] = args.max_padding
        rm = registry.build("rm", f"{args.family}:{ckpt}", rm_args)
        masked = registry.build("rm", f"{args.family}:{ckpt}", {**rm_args, "padding_side": "left"})
        with torch.inference_mode():
            naive_rates, batched_rates, naive, batched = _paired_rates(
                lambda: [rm.score_items(None, [it])[0] for it in items], lambda: rm.score_items(None, items),
                n_steps, args.repeats)
            masked_rates, batched_rates2, _, _ = _paired_rates(
                lambda: masked.score_items(None, items), lambda: rm.score_items(None, items), n_steps, args.repeats)
    worst = max(abs(a - b) for x, y in zip(naive, batched) for a, b in zip(x.step_scores, y.step_scores))
    tokens = sum(o.tokens for o in batched)
    ratios = sorted(b / a for a, b in zip(naive_rates, batched_rates))
    print(f"{args.family}: {len(items)} candidates, {n_steps} steps, {tokens} tokens, batch_size {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s), {args.repeats} paired repeats")
    print(f"naive one-at-a-time: {statistics.median(naive_rates):8.1f} steps/s (median)")
    print(f"batched:             {statistics.median(batched_rates):8.1f} steps/s (median)")
    print(f"ratio batched/naive: {statistics.median(ratios):.2f}x median of paired repeats "
          f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}; max score difference {worst:.1e})")
    mask_ratios = sorted(b / a for a, b in zip(masked_rates, batched_rates2))
    print(f"batched, left padding + attention mask: {statistics.median(masked_rates):8.1f} steps/s; right padding "
          f"without a mask is {statistics.median(mask_ratios):.2f}x faster (range {mask_ratios[0]:.2f}-{mask_ratios[-1]:.2f})")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
