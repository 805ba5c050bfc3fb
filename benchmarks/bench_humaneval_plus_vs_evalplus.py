"""Benchmark: HumanEval+ canonical-solution evaluation, prmbench's sandboxed judge vs evalplus.

Judges all 164 HumanEval+ v0.1.10 canonical solutions on every base and plus input, in the
same process run, with the same expected outputs and ground-truth times (computed once by
prmbench in the sandbox, cached, and checked against evalplus in tests/test_evalplus_parity.py):

- prmbench: `HumanEvalPlusTask.grade_many` (long-lived sandbox workers, one fork per run,
  comparison on the trusted side), with its default of one sandbox slot per core and with one
  slot;
- evalplus: its own per-sample checker `evalplus.eval.untrusted_check` for base then plus (a
  fresh process per call, in-process comparison), run as `evalplus.evaluate` runs it: a
  `ProcessPoolExecutor` of `n_workers` processes, with evalplus's default
  ``max(1, cpu_count // 2)`` and with one worker per core.

Each side is timed from "here are the programs" to "here are the verdicts", with the expected
outputs already in memory on both sides (prmbench's loaded from its ground-truth cache,
evalplus's handed to it as values). Reports median wall seconds over interleaved rounds,
samples per second, throughput ratios and verdict agreement (HumanEval/32 find_zero is
excluded from agreement: evalplus 0.3.1 fails it for every sample).

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_humaneval_plus_vs_evalplus.py [--limit K]
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

from evalplus.eval import untrusted_check
from evalplus.gen.util import trusted_exec

from prmbench.code_judge import Digest
from prmbench.tasks.evalplus_tasks import HumanEvalPlusTask


def evalplus_check(program: str, ep: str, atol: float, splits: list[tuple[list, list, list]]) -> tuple[bool, ...]:
    """One sample as evalplus's `check_correctness` judges it: base then plus, fast_check."""
    return tuple(untrusted_check("humaneval", program, inputs, ep, expected, atol, times, fast_check=True)[0] == "pass"
                 for inputs, expected, times in splits)


def time_prmbench(problems: list, programs: dict[str, str], workers: int) -> tuple[float, dict[str, tuple[bool, bool]]]:
    """Wall seconds and (base, plus) verdicts of prmbench with `workers` sandbox slots."""
    task = HumanEvalPlusTask(workers=workers)
    for p in task.load():  # expected outputs in memory, as evalplus gets them below
        task.ground_truth(p)
    task.sandbox  # noqa: B018  (start the slots before the clock, as a long-running harness has them)
    t0 = time.perf_counter()
    grades = task.grade_many([(p, programs[p.id]) for p in problems])
    wall = time.perf_counter() - t0
    task.close()
    return wall, {p.id: (g.details["base_status"] == "pass", g.details["plus_status"] == "pass")
                  for p, g in zip(problems, grades)}


def time_evalplus(jobs: dict[str, tuple], workers: int) -> tuple[float, dict[str, tuple[bool, ...]]]:
    """Wall seconds and verdicts of evalplus's checker in a pool of `workers` processes."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pid: pool.submit(evalplus_check, *job) for pid, job in jobs.items()}
        verdicts = {pid: f.result() for pid, f in futures.items()}
    return time.perf_counter() - t0, verdicts


def main() -> None:
    """Time both judges on the canonical solutions and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first K problems")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds (configurations interleaved within each round); medians are reported")
    args = ap.parse_args()
    task = HumanEvalPlusTask()
    problems = task.load()[: args.limit]
    programs = {p.id: task.canonical_program(task._row(p)) for p in problems}
    # Ground truth first, so both sides are timed on judging alone. prmbench keeps huge outputs
    # (e.g. HumanEval/15 on n=50000) as digests; evalplus needs the values, so those come from
    # evalplus's own trusted_exec.
    jobs: dict[str, tuple[Any, ...]] = {}
    for p in problems:
        gt = task.ground_truth(p)
        splits = []
        for split in ("base", "plus"):
            values = gt[split]
            if any(isinstance(v, Digest) for v in values):
                values = trusted_exec(programs[p.id], copy.deepcopy(task.hidden_inputs(p, split)),
                                      p.metadata["entry_point"])
            splits.append((task.hidden_inputs(p, split), values, gt[f"{split}_time"]))
        jobs[p.id] = (programs[p.id], p.metadata["entry_point"], float(p.metadata["atol"] or 0), splits)
    isolation = task.sandbox.isolation
    task.close()

    cores = os.cpu_count() or 1
    evalplus_default = max(1, multiprocessing.cpu_count() // 2)
    configs: dict[str, Callable[[], tuple[float, dict]]] = {
        f"prmbench, {cores} slots (default)": lambda: time_prmbench(problems, programs, cores),
        "prmbench, 1 slot": lambda: time_prmbench(problems, programs, 1),
        f"evalplus, {evalplus_default} worker(s) (default)": lambda: time_evalplus(jobs, evalplus_default),
    }
    if cores != evalplus_default:
        configs[f"evalplus, {cores} workers"] = lambda: time_evalplus(jobs, cores)
    samples: dict[str, list[tuple[float, dict]]] = {name: [] for name in configs}
    for _ in range(max(1, args.repeat)):
        for name, run in configs.items():
            samples[name].append(run())
    runs = {name: (statistics.median(w for w, _ in got), got[0][1]) for name, got in samples.items()}

    n = len(problems)
    compared = [p.id for p in problems if p.id != "HumanEval/32"]
    print(f"problems: {n} (base + all plus inputs), {cores} cores, sandbox isolation: {isolation}")
    for name, (wall, verdicts) in runs.items():
        ok = all(all(verdicts[pid]) for pid in compared)
        walls = ", ".join(f"{w:.1f}" for w, _ in samples[name])
        print(f"{name:34s} {wall:7.1f} s  {n / wall:6.2f} samples/s  all pass (excl. find_zero): {ok}  (rounds: {walls})")
    names = list(runs)
    ours_default, ours_one, theirs_default = (runs[names[i]] for i in range(3))
    theirs_all = runs[names[-1]]
    print(f"throughput ratio, defaults ({names[0]} vs {names[2]}): {theirs_default[0] / ours_default[0]:.2f}x")
    print(f"throughput ratio, equal parallelism ({cores} vs {cores}): {theirs_all[0] / ours_default[0]:.2f}x")
    print(f"throughput ratio, one process each: {theirs_default[0] / ours_one[0]:.2f}x"
          if evalplus_default == 1 else "")
    same = sum(ours_default[1][pid] == theirs_default[1][pid] for pid in compared)
    print(f"identical (base, plus) verdicts: {same}/{len(compared)}")
    for pid in compared:
        if ours_default[1][pid] != theirs_default[1][pid]:
            print(f"  differs: {pid} prmbench {ours_default[1][pid]} evalplus {theirs_default[1][pid]}")


if __name__ == "__main__":
    main()
