"""Benchmark: sandbox worker start-up and per-run cost.

Measures, with the sandbox of whatever prmbench is importable (run it once with this checkout
and once with an older one on PYTHONPATH to compare):

- first sandbox: `Sandbox(workers=1)` plus its first run, in a fresh process (level probe,
  interpreter inspection, worker start);
- worker start: a slot's start (bwrap, interpreter, worker imports) until its hello, median of
  `--starts` restarts in one process;
- per run: median wall time of ``pass`` runs on a warm slot.

Usage::

    python benchmarks/bench_sandbox_startup.py [--starts 15] [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _first_sandbox_seconds() -> float:
    """Wall time of Sandbox(workers=1) + one run in a fresh interpreter."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from prmbench.sandbox import Sandbox\n"
        "t0 = time.perf_counter()\n"
        "with Sandbox(workers=1) as sb:\n"
        "    assert sb.run('print(1)').stdout == '1\\n'\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the measurements and print them."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=15)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--fresh", type=int, default=3, help="fresh-process first-sandbox measurements")
    args = ap.parse_args()

    from prmbench.sandbox import Sandbox
    from prmbench.sandbox import slot as slot_mod

    firsts = [_first_sandbox_seconds() for _ in range(args.fresh)]
    with Sandbox(workers=1) as sb:
        (slot,) = sb._slots
        starts = []
        for _ in range(args.starts):
            slot.kill()
            t0 = time.perf_counter()
            slot.start()
            starts.append(time.perf_counter() - t0)
        runs = []
        sb.run("pass")
        for _ in range(args.runs):
            t0 = time.perf_counter()
            assert sb.run("pass").status == "ok"
            runs.append(time.perf_counter() - t0)
        level = sb.isolation
    print(f"sandbox module: {slot_mod.__file__} ({level})")
    print(f"first sandbox + run (fresh process): median {statistics.median(firsts) * 1000:.0f} ms "
          f"(min {min(firsts) * 1000:.0f})")
    print(f"worker start: median {statistics.median(starts) * 1000:.1f} ms (min {min(starts) * 1000:.1f})")
    print(f"per run: median {statistics.median(runs) * 1000:.2f} ms (min {min(runs) * 1000:.2f})")


if __name__ == "__main__":
    main()
