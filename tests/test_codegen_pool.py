"""The real CodeGen-16B HumanEval pool replayed through `prmbench run`.

The pool (../shared/data/pools, 100 samples per task, from CodeT) ships pass/fail verdicts
computed against the official HumanEval tests. Replaying it must reproduce what those verdicts
imply: best-of-N with the oracle = the share of tasks with a passing sample among the first N,
and N=1 (any strategy) = the pass rate of sample 0.
"""

from __future__ import annotations

import gzip
import json

import pytest

from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner

TASKS = 20


@pytest.fixture(scope="module")
def pool_file(shared_data_dir):
    path = shared_data_dir / "pools" / "humaneval_codegen16b_codet_verdicts.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set PRMBENCH_DATA_DIR to the shared data folder)")
    return path


@pytest.fixture(scope="module")
def verdicts(pool_file):
    rows = [json.loads(line) for line in gzip.open(pool_file, "rt")]
    rows.sort(key=lambda r: int(r["task_id"].split("/")[1]))
    return {r["task_id"]: r["passed"] for r in rows[:TASKS]}


@pytest.mark.slow
def test_replayed_pool_reproduces_its_verdicts(pool_file, verdicts, tmp_path):
    spec = RunSpec(tasks=("humaneval",), rms=("oracle", "random"), strategies=("best_of_n", "majority_vote"),
                   budgets=(1, 10, 100), policy=f"replay:{pool_file}", limit=TASKS)
    run = load_run(Runner(spec, build_registry(strict=True), tmp_path / "run", log=lambda m: None).run())
    acc = {(c.rm, c.strategy, c.budget): c.metrics["accuracy"] for c in run.cells}
    for n in (1, 10, 100):
        assert acc[("oracle", "best_of_n", n)] == pytest.approx(sum(any(v[:n]) for v in verdicts.values()) / TASKS)
    first = sum(v[0] for v in verdicts.values()) / TASKS
    assert acc[("random", "best_of_n", 1)] == acc[("none", "majority_vote", 1)] == pytest.approx(first)
    cell = next(c for c in run.cells if (c.rm, c.strategy, c.budget) == ("oracle", "best_of_n", 100))
    assert {r["grade_details"]["isolation"] for r in cell.records} <= {"bwrap", "unshare+uid"}  # never weak
