"""The runner end to end on real MATH-500 data with a replayed pool of real solutions."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from prmbench.errors import ConfigError
from prmbench.plugins import build_registry
from prmbench.policies.replay import ReplayPolicy
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner
from prmbench.testing.pools import build_math500_pool

LIMIT = 12
SAMPLES = 8


@pytest.fixture(scope="module")
def pool(shared_data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    build_math500_pool(shared_data_dir, path, problems=LIMIT, samples=SAMPLES, seed=0)
    return path


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


@pytest.fixture()
def spec(pool, shared_data_dir) -> RunSpec:
    return RunSpec(tasks=("math500",), rms=("oracle", "random"), strategies=("best_of_n", "majority_vote"),
                   budgets=(1, 4, 8), policy=f"replay:{pool}",
                   data_files={"math500": str(shared_data_dir / "math500" / "test.jsonl")})


class CountingReplay(ReplayPolicy):
    """The real replay backend, counting how many samples the harness asks it for."""

    served = 0

    def generate(self, requests, problem_ids=None):
        CountingReplay.served += sum(r.n for r in requests)
        return super().generate(requests, problem_ids)


@pytest.fixture()
def counting_registry(registry):
    from prmbench.registry import Entry

    registry.add(Entry(kind="policy", name="counting_replay", origin="test", factory=CountingReplay, target="path"))
    CountingReplay.served = 0
    return registry


def _records(run_dir: Path) -> dict[str, list[dict]]:
    out = {}
    for cell in load_run(run_dir).cells:
        recs = []
        for r in cell.records:
            r = dict(r)
            r["info"] = {k: v for k, v in r["info"].items() if k != "wall_seconds"}
            r["spend"] = {k: v for k, v in r["spend"].items() if k != "seconds"}
            recs.append(r)
        out[cell.id] = recs
    return out


def test_matrix_accuracy_matches_direct_grading(spec, registry, pool, tmp_path):
    out = Runner(spec, registry, tmp_path / "run").run()
    run = load_run(out)
    assert run.run["status"] == "complete"
    ids = [(c.task, c.rm, c.strategy, c.budget) for c in run.cells]
    # majority vote uses no reward model: one cell per budget
    assert len(ids) == 2 * 2 * 3 - 3 and ("math500", "none", "majority_vote", 4) in ids

    task = registry.build("task", "math500", {"data_file": spec.data_files["math500"]})
    problems = {p.id: p for p in task.load()}
    pool_rows = [json.loads(l) for l in pool.read_text().splitlines()]
    truth = {r["problem_id"]: [task.grade(problems[r["problem_id"]], c).correct for c in r["completions"]]
             for r in pool_rows}
    by = {(c.rm, c.strategy, c.budget): c for c in run.cells}
    for n in (1, 4, 8):
        # best-of-N with the oracle is pass@N of the pool's first N samples
        expected = sum(any(v[:n]) for v in truth.values()) / LIMIT
        cell = by[("oracle", "best_of_n", n)]
        assert cell.metrics["accuracy"] == pytest.approx(expected)
        assert cell.metrics["n"] == LIMIT and cell.metrics["complete"]
        for rec in cell.records:
            assert rec["n_candidates"] == n
            assert rec["spend"]["policy_calls"] == n and rec["spend"]["rm_calls"] == n
            assert rec["spend"]["generated_tokens"] > 0
    # at N=1 every strategy returns sample 0
    for key in [("oracle", "best_of_n", 1), ("random", "best_of_n", 1), ("none", "majority_vote", 1)]:
        acc = by[key].metrics["accuracy"]
        assert acc == pytest.approx(sum(v[0] for v in truth.values()) / LIMIT)
    m = by[("oracle", "best_of_n", 8)].metrics
    assert m["ci_low"] <= m["accuracy"] <= m["ci_high"]


def test_chosen_solutions_are_graded_in_chunks(spec, registry, tmp_path, monkeypatch):
    """The runner grades each chunk's chosen solutions with one `Task.grade_many` call (code
    tasks judge them in parallel), and the records equal one-at-a-time grading."""
    from prmbench.tasks.math500 import Math500Task

    sizes: list[int] = []
    real = Math500Task.grade_many

    def spy(self, items):  # type: ignore[no-untyped-def]
        sizes.append(len(items))
        return real(self, items)

    monkeypatch.setattr("prmbench.units.GRADE_CHUNK", 3)  # the solver of work units grades in chunks
    monkeypatch.setattr(Math500Task, "grade_many", spy)
    one = dataclasses.replace(spec, rms=("random",), strategies=("best_of_n",), budgets=(4,))
    out = Runner(one, registry, tmp_path / "run").run()
    assert sizes == [3] * (LIMIT // 3) + ([LIMIT % 3] if LIMIT % 3 else [])
    task = registry.build("task", "math500", {"data_file": spec.data_files["math500"]})
    problems = {p.id: p for p in task.load()}
    for rec in load_run(out).cells[0].records:
        assert rec["correct"] == task.grade(problems[rec["problem_id"]], rec["chosen_text"]).correct


def test_pool_shared_across_budgets_and_strategies(spec, counting_registry, tmp_path):
    spec = RunSpec(**{**spec.__dict__, "policy": spec.policy.replace("replay:", "counting_replay:")})
    Runner(spec, counting_registry, tmp_path / "run").run()
    # one pool of 8 per problem serves budgets 1, 4, 8 of both strategies and both reward models
    assert CountingReplay.served == LIMIT * SAMPLES


def test_same_seed_same_records(spec, registry, tmp_path):
    a = Runner(spec, registry, tmp_path / "a").run()
    b = Runner(spec, registry, tmp_path / "b").run()
    assert _records(a) == _records(b)


def test_interrupt_keeps_work_and_resume_completes(spec, counting_registry, tmp_path, monkeypatch):
    spec = RunSpec(**{**spec.__dict__, "policy": spec.policy.replace("replay:", "counting_replay:")})
    reference = _records(Runner(spec, counting_registry, tmp_path / "ref").run())

    from prmbench.tasks.math500 import Math500Task

    real_grade = Math500Task.grade
    calls = {"n": 0}

    def flaky_grade(self, problem, completion):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return real_grade(self, problem, completion)

    monkeypatch.setattr(Math500Task, "grade", flaky_grade)
    with pytest.raises(KeyboardInterrupt):
        Runner(spec, counting_registry, tmp_path / "run").run()
    assert load_run(tmp_path / "run").run["status"] == "interrupted"
    kept = sum(len(v) for v in _records(tmp_path / "run").values())
    assert 0 < kept < sum(len(v) for v in reference.values())
    # a crash mid-write leaves a torn last line: it is dropped and recomputed
    first_cell = next((tmp_path / "run" / "cells").iterdir()) / "samples.jsonl"
    with first_cell.open("a") as f:
        f.write('{"problem_id": "torn')
    monkeypatch.setattr(Math500Task, "grade", real_grade)
    with pytest.raises(ConfigError, match="--resume"):
        Runner(spec, counting_registry, tmp_path / "run").run()
    served_before = CountingReplay.served
    Runner(spec, counting_registry, tmp_path / "run", resume=True).run()
    assert CountingReplay.served == served_before  # every sample came from the run's cache
    assert _records(tmp_path / "run") == reference
    assert load_run(tmp_path / "run").run["status"] == "complete"


def test_resume_refuses_a_different_config(spec, registry, tmp_path):
    Runner(spec, registry, tmp_path / "run").run()
    other = RunSpec(**{**spec.__dict__, "budgets": (1, 2)})
    with pytest.raises(ConfigError, match="different configuration"):
        Runner(other, registry, tmp_path / "run", resume=True).run()


def test_cache_holds_generations_and_scores(spec, registry, tmp_path):
    out = Runner(spec, registry, tmp_path / "run").run()
    n = sqlite3.connect(out / "cache.sqlite").execute("SELECT COUNT(*) FROM kv").fetchone()[0]
    # 8 generations per problem + oracle and random scores of each distinct candidate text
    assert LIMIT * SAMPLES < n <= LIMIT * SAMPLES * 3


def test_run_json_records_provenance(spec, registry, tmp_path):
    run = json.loads((Runner(spec, registry, tmp_path / "run").run() / "run.json").read_text())
    assert run["schema_version"] == 1 and run["seed"] == 0
    assert run["tasks"]["math500"]["n_problems"] == LIMIT and run["tasks"]["math500"]["n_available"] == 500
    assert len(run["tasks"]["math500"]["data_fingerprint"]) == 16
    assert run["versions"]["torch"] and run["hardware"]["cpu_count"] >= 1
    assert run["components"]["policy"]["config"]["file"] == "pool.jsonl"
    assert run["tasks"]["math500"]["restricted_to_policy"] is True
    assert {p["name"] for p in run["plugins"]} >= {"prmbench.tasks", "prmbench.policies"}
    assert "best-of-N" in run["budget_definition"]
