"""Benchmark: `humaneval` grading with the two-process checker vs the old single-program wrapper.

The old wrapper (kept below verbatim as the baseline; forgeable, see `prmbench.check_judge`)
ran ``program + test + check(entry_point)`` as one program in the sandbox and looked for a
pass token on stdout. The checker runs the check in a process of its own and calls the
candidate through a typed-JSON proxy. Both run the same programs on the same sandbox slots;
rounds alternate between the two, and the medians are compared.

Programs: the 164 canonical solutions, plus (with ``--pool N``) the first N samples per task
of the CodeGen-16B pool in ``$PRMBENCH_DATA_DIR/pools`` (failures, exceptions and timeouts
included). Also reports every program on which the two disagree, and each grader's
disagreements with the pool's shipped verdicts (computed against the official tests). Usage:

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_humaneval_check.py [--pool 5] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prmbench.sandbox import Limits
from prmbench.tasks.evalplus_tasks import HumanEvalTask

_OLD_WRAPPER = (
    "import os as _o, sys as _s, json as _j\n"
    "_job = _j.loads(_s.stdin.read())\n"
    "_fd = _o.dup(1)\n"
    "_o.dup2(_o.open(_o.devnull, _o.O_WRONLY), 1)\n"
    "try:\n"
    "    exec(compile(_job['p'], '<solution>', 'exec'), {'__name__': '__main__'})\n"
    "except SystemExit as _e:\n"
    "    _o.write(_fd, b'EXIT\\n')\n"
    "    _o._exit(3)\n"
    "_o.write(_fd, ('DONE ' + _job['n'] + '\\n').encode())\n"
)


def old_grade(task: HumanEvalTask, problem, program: str) -> bool:  # type: ignore[no-untyped-def]
    """The pre-checker verdict: ``program + test + check(entry)`` ran to its end (the baseline)."""
    row = task._row(problem)
    full = f"{program}\n\n{row['test']}\n\ncheck({row['entry_point']})\n"
    nonce = secrets.token_hex(16)
    res = task.sandbox.run(_OLD_WRAPPER, json.dumps({"p": full, "n": nonce}),
                           Limits(wall_seconds=task.timeout, cpu_seconds=task.timeout, memory_mb=task.memory_mb))
    return res.status == "ok" and f"DONE {nonce}" in res.stdout.split("\n")


def new_grade(task: HumanEvalTask, problem, program: str) -> bool:  # type: ignore[no-untyped-def]
    """The checker's verdict."""
    return task.run_check(problem, program)[0] == "pass"


def main() -> None:
    """Run both graders over the programs and print times, ratio and disagreements."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=0, help="pool samples per task to add (0-100)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="write per-program verdicts of both graders here (JSONL)")
    args = ap.parse_args()
    task = HumanEvalTask(workers=args.workers)
    problems = {p.id: p for p in task.load()}
    jobs = [(p, task.full_program(p, task._row(p)["canonical_solution"]), "canonical") for p in problems.values()]
    shipped: dict[int, tuple[bool, str]] = {}  # job index -> the pool's own verdict (official tests)
    if args.pool:
        data = Path(os.environ.get("PRMBENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
        with gzip.open(data / "pools" / "humaneval_codegen16b_codet_verdicts.jsonl.gz", "rt") as fh:
            for line in fh:
                row = json.loads(line)
                p = problems[row["task_id"]]
                for i, c in enumerate(row["completions"][:args.pool]):
                    jobs.append((p, task.full_program(p, c), f"pool{i}"))
                    shipped[len(jobs) - 1] = (row["passed"][i], row["verdicts"][i])
    graders = {"old": old_grade, "new": new_grade}
    times: dict[str, list[float]] = {k: [] for k in graders}
    verdicts: dict[str, list[bool]] = {}
    task.run_check(jobs[0][0], jobs[0][1])  # start the slots
    with ThreadPoolExecutor(args.workers) as pool:
        for _ in range(args.rounds):
            for name, fn in graders.items():
                t0 = time.perf_counter()
                verdicts[name] = list(pool.map(lambda j: fn(task, j[0], j[1]), jobs))
                times[name].append(time.perf_counter() - t0)
    task.close()
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"{len(jobs)} programs, {args.workers} slots, {args.rounds} rounds: old wrapper {old:.2f} s "
          f"({1000 * old / len(jobs):.1f} ms/program), checker {new:.2f} s ({1000 * new / len(jobs):.1f} ms/program), "
          f"checker/old = {new / old:.2f}x")
    print(f"pass: old {sum(verdicts['old'])}, new {sum(verdicts['new'])}")
    diff = [(j[0].id, j[2], o, n) for j, o, n in zip(jobs, verdicts["old"], verdicts["new"]) if o != n]
    print(f"disagreements: {len(diff)}", *diff[:50], sep="\n  ")
    for name in graders:
        off = [(jobs[k][0].id, jobs[k][2], why) for k, (passed, why) in shipped.items() if verdicts[name][k] != passed]
        print(f"{name} vs the pool's shipped verdicts: {len(off)} of {len(shipped)} differ", *off[:20], sep="\n  ")
    if args.out:
        with open(args.out, "w") as fh:
            for j, o, n in zip(jobs, verdicts["old"], verdicts["new"]):
                fh.write(json.dumps({"task_id": j[0].id, "which": j[2], "old": o, "new": n}) + "\n")


if __name__ == "__main__":
    main()
