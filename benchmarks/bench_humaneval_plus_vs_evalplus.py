"""Benchmark: HumanEval+ canonical-solution evaluation, prmbench's sandboxed judge vs evalplus.

Judges all 164 HumanEval+ v0.1.10 canonical solutions on every base and plus input, twice in
the same process, with the same expected outputs and ground-truth times (computed once by
prmbench in the sandbox, cached, and checked against evalplus in tests/test_evalplus_parity.py):

- prmbench: `HumanEvalPlusTask.judge_program` (long-lived sandbox workers, one fork per run,
  comparison on the trusted side);
- evalplus: its own per-sample checker `evalplus.eval.untrusted_check` for base then plus (a
  fresh process per call, in-process comparison), as `evalplus.evaluate` runs it per sample.

Reports wall seconds, samples per second, the throughput ratio and verdict agreement
(HumanEval/32 find_zero is excluded from agreement: evalplus 0.3.1 fails it for every sample).

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_humaneval_plus_vs_evalplus.py [--limit K]
"""

from __future__ import annotations

import argparse
import copy
import time

from evalplus.eval import untrusted_check
from evalplus.gen.util import trusted_exec

from prmbench.code_judge import Digest
from prmbench.tasks.evalplus_tasks import HumanEvalPlusTask


def main() -> None:
    """Time both judges on the canonical solutions and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first K problems")
    args = ap.parse_args()
    task = HumanEvalPlusTask()
    problems = task.load()[: args.limit]
    for p in problems:  # ground truth first, so both sides are timed on judging alone
        task.ground_truth(p)
    programs = {p.id: task.canonical_program(task._row(p)) for p in problems}

    t0 = time.perf_counter()
    ours = {}
    for p in problems:
        v = task.judge_program(p, programs[p.id])
        ours[p.id] = (v["base"].status == "pass", v["plus"] is not None and v["plus"].status == "pass")
    t_ours = time.perf_counter() - t0

    # prmbench keeps huge outputs (e.g. HumanEval/15 on n=50000) as digests; evalplus needs the
    # values, so those come from evalplus's own trusted_exec (outside the timed part).
    expected = {}
    for p in problems:
        gt = task.ground_truth(p)
        for split in ("base", "plus"):
            values = gt[split]
            if any(isinstance(v, Digest) for v in values):
                values = trusted_exec(programs[p.id], copy.deepcopy(task.hidden_inputs(p, split)),
                                      p.metadata["entry_point"])
            expected[p.id, split] = values

    t0 = time.perf_counter()
    theirs = {}
    for p in problems:
        gt = task.ground_truth(p)
        ep, atol = p.metadata["entry_point"], float(p.metadata["atol"] or 0)
        verdicts = []
        for split in ("base", "plus"):
            v, _ = untrusted_check("humaneval", programs[p.id], copy.deepcopy(task.hidden_inputs(p, split)), ep,
                                   expected[p.id, split], atol, gt[f"{split}_time"], fast_check=True)
            verdicts.append(v == "pass")
        theirs[p.id] = tuple(verdicts)
    t_theirs = time.perf_counter() - t0
    isolation = task.sandbox.isolation
    task.close()

    compared = [pid for pid in ours if pid != "HumanEval/32"]
    same = sum(ours[pid] == theirs[pid] for pid in compared)
    n = len(problems)
    print(f"problems: {n} (base + all plus inputs), sandbox isolation: {isolation}")
    print(f"prmbench : {t_ours:7.1f} s  {n / t_ours:6.2f} samples/s  all pass: {all(all(v) for v in ours.values())}")
    print(f"evalplus : {t_theirs:7.1f} s  {n / t_theirs:6.2f} samples/s  all pass (excl. find_zero): "
          f"{all(all(theirs[pid]) for pid in compared)}")
    print(f"throughput ratio prmbench/evalplus: {t_theirs / t_ours:.2f}x; identical verdicts {same}/{len(compared)}")
    for pid in compared:
        if ours[pid] != theirs[pid]:
            print(f"  differs: {pid} prmbench (base, plus) {ours[pid]} evalplus {theirs[pid]}")


if __name__ == "__main__":
    main()
