"""Benchmark: `prmbench lab` stage by stage (seconds per stage and each stage's share of the total).

    python benchmarks/bench_lab.py [--quick] [--output DIR] [--threads N]

Runs the lab into a fresh folder (trained models are not reused: the cache is inside it), then
prints `lab_times.json` and `lab_cpu_times.json` as a table: wall seconds per stage with each
stage's share of the whole, CPU seconds (user + system, training workers included) and CPU
seconds / N, which approximates the wall time on N uncontended cores (the machine is shared:
wall seconds there depend on the others' load, CPU seconds much less), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from prmbench.cli import main


def run(quick: bool, output: Path | None, threads: int) -> dict[str, float]:
    """Run the lab into `output` (a temporary folder when None); return its stage times."""
    out = output or Path(tempfile.mkdtemp(prefix="bench-lab-"))
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    args = ["lab", "--output", str(out), "--threads", str(threads)] + (["--quick"] if quick else [])
    if main(args) != 0:
        raise SystemExit("the lab failed")
    times = json.loads((out / "lab_times.json").read_text())
    cpu = json.loads((out / "lab_cpu_times.json").read_text())
    times["total"] = round(time.perf_counter() - t0, 2)
    cpu["total"] = round(sum(cpu.values()), 2)
    return {k: (v, cpu.get(k, 0.0)) for k, v in times.items()}


def main_bench() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--output", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    times = run(a.quick, a.output, a.threads)
    total = times["total"][0]
    print(f"| stage | wall s | share | CPU s (user+sys) | CPU s / {a.threads} (uncontended wall estimate) |")
    print("|---|---:|---:|---:|---:|")
    for stage, (sec, cpu) in times.items():
        print(f"| {stage} | {sec:.1f} | {100 * sec / total:.0f}% | {cpu:.1f} | {cpu / a.threads:.1f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main_bench()
