"""Benchmark: sandbox worker start-up and per-run cost, against a baseline sandbox in the same run.

Measures this checkout's `prmbench.sandbox` and, with ``--baseline DIR`` (the
``prmbench/sandbox`` folder of another version, e.g. from ``git archive``), that one too,
interleaved round by round in one process so both see the same machine load:

- worker start: a slot's start (bwrap, interpreter, worker imports) until its hello;
- per run: wall time of a ``pass`` run on a warm slot;
- first sandbox: ``Sandbox(workers=1)`` plus one run (level probe, interpreter inspection),
  in a fresh process per measurement (this checkout only).

Prints medians and the ratio new / baseline. Usage::

    mkdir -p /tmp/base && git archive fcbd462 prmbench/sandbox | tar -x -C /tmp/base
    python benchmarks/bench_sandbox_startup.py --baseline /tmp/base/prmbench/sandbox [--rounds 7]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType


def _load_baseline(folder: Path) -> ModuleType:
    """Import another version's sandbox package as ``baseline_sandbox`` (imports rewritten)."""
    root = Path(tempfile.mkdtemp(prefix="prmbench-bench-"))
    pkg = root / "baseline_sandbox"
    pkg.mkdir()
    for src in folder.glob("*.py"):
        (pkg / src.name).write_text(src.read_text().replace("prmbench.sandbox", "baseline_sandbox"))
    sys.path.insert(0, str(root))
    return importlib.import_module("baseline_sandbox")


def _first_sandbox_seconds() -> float:
    """Wall time of Sandbox(workers=1) + one run in a fresh interpreter."""
    code = (
        "import time\nfrom prmbench.sandbox import Sandbox\nt0 = time.perf_counter()\n"
        "with Sandbox(workers=1) as sb:\n    assert sb.run('print(1)').stdout == '1\\n'\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return float(out.stdout.strip().splitlines()[-1])


def _round(box, starts: int, runs: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """One round on a sandbox: `starts` worker restarts, then `runs` warm runs."""
    (slot,) = box._slots
    start_times, run_times = [], []
    for _ in range(starts):
        slot.kill()
        t0 = time.perf_counter()
        slot.start()
        start_times.append(time.perf_counter() - t0)
    box.run("pass")
    for _ in range(runs):
        t0 = time.perf_counter()
        assert box.run("pass").status == "ok"
        run_times.append(time.perf_counter() - t0)
    return start_times, run_times


def main() -> None:
    """Run the measurements and print them."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, help="the prmbench/sandbox folder of the version to compare with")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--starts", type=int, default=5, help="worker starts per round")
    ap.add_argument("--runs", type=int, default=30, help="warm runs per round")
    ap.add_argument("--fresh", type=int, default=5, help="fresh-process first-sandbox measurements")
    args = ap.parse_args()

    from prmbench.sandbox import Sandbox

    versions = {"new": Sandbox}
    if args.baseline:
        versions["baseline"] = _load_baseline(args.baseline).Sandbox
    boxes = {name: cls(workers=1) for name, cls in versions.items()}
    starts: dict[str, list[float]] = {name: [] for name in boxes}
    runs: dict[str, list[float]] = {name: [] for name in boxes}
    try:
        for _ in range(args.rounds):
            for name, box in boxes.items():
                s, r = _round(box, args.starts, args.runs)
                starts[name] += s
                runs[name] += r
    finally:
        for box in boxes.values():
            box.close()
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    for name in boxes:
        print(f"{name:8s} ({boxes[name].isolation}): worker start median {ms(starts[name]):.1f} ms, "
              f"per run median {ms(runs[name]):.2f} ms")
    if "baseline" in boxes:
        print(f"ratio new/baseline: worker start {ms(starts['new']) / ms(starts['baseline']):.2f}x, "
              f"per run {ms(runs['new']) / ms(runs['baseline']):.2f}x")
    firsts = [_first_sandbox_seconds() for _ in range(args.fresh)]
    print(f"first sandbox + run (fresh process, new): median {ms(firsts):.0f} ms")


if __name__ == "__main__":
    main()
