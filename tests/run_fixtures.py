"""Synthetic run directories in the exact results schema (version 1), for offline tests.

`write_run` lays out run.json, cells/<id>/samples.jsonl and cells/<id>/metrics.json the way
`prmbench.runner.Runner` does, from a compact description of each cell (`FakeCell`), so the
leaderboard, plot and compare code can be tested without running any model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from prmbench.metrics import cell_metrics
from prmbench.results import CELLS_DIR, METRICS_FILE, RUN_FILE, SAMPLES_FILE, SCHEMA_VERSION, write_json_atomic

DEFAULT_POLICY = "replay:pool.jsonl"
POLICY_PARAMS = 1.5e9
RM_PARAMS = 7e9


def cell_id(task: str, rm: str, strategy: str, budget: int, unit: str = "n") -> str:
    """The runner's cell id: task--rm--strategy--UNITBUDGET, made file-system safe."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", f"{task}--{rm}--{strategy}--{unit}{budget}")


@dataclass
class FakeCell:
    """One cell to write: its identity and one outcome per problem.

    `correct[i]` is the outcome of problem `problem_ids[i]` (default ids p0000, p0001, ...).
    Spend per record scales with the budget: `tokens_per_sample * budget` generated tokens,
    `rm_tokens_per_sample * budget` RM tokens (0 for rm 'none'); FLOPs are 2 x params x tokens
    unless `flops` is False (then every FLOPs field is 0, as for a backend that cannot count them).
    """

    task: str
    rm: str
    strategy: str
    budget: int
    correct: Sequence[bool]
    problem_ids: Sequence[str] | None = None
    policy: str = DEFAULT_POLICY
    tokens_per_sample: int = 100
    prompt_tokens: int = 50
    rm_tokens_per_sample: int = 120
    seconds_per_sample: float = 0.01
    flops: bool = True
    write_metrics: bool = True
    extra_records: list[dict[str, Any]] = field(default_factory=list)
    budget_unit: str = "n"

    @property
    def id(self) -> str:
        """The cell's id in the run directory."""
        return cell_id(self.task, self.rm, self.strategy, self.budget, self.budget_unit)

    def ids(self) -> list[str]:
        """The problem ids, one per outcome."""
        if self.problem_ids is not None:
            if len(self.problem_ids) != len(self.correct):
                raise ValueError("problem_ids and correct must have the same length")
            return list(self.problem_ids)
        return [f"p{i:04d}" for i in range(len(self.correct))]


def make_record(cell: FakeCell, problem_id: str, correct: bool, seed: int = 0) -> dict[str, Any]:
    """One samples-file line for `cell`, shaped exactly like `prmbench.types.Record.to_json`."""
    gen = cell.tokens_per_sample * cell.budget
    prompt = cell.prompt_tokens * cell.budget
    rm_tokens = 0 if cell.rm == "none" else cell.rm_tokens_per_sample * cell.budget
    policy_flops = 2 * POLICY_PARAMS * (prompt + gen) if cell.flops else 0.0
    rm_flops = 2 * RM_PARAMS * rm_tokens if cell.flops else 0.0
    return {
        "problem_id": problem_id,
        "task": cell.task,
        "rm": cell.rm,
        "strategy": cell.strategy,
        "budget": cell.budget,
        "seed": seed,
        "correct": bool(correct),
        "answer": "42" if correct else "41",
        "chosen_text": "The answer is \\boxed{42}." if correct else "The answer is \\boxed{41}.",
        "n_candidates": cell.budget,
        "spend": {
            "prompt_tokens": prompt,
            "generated_tokens": gen,
            "rm_tokens": rm_tokens,
            "policy_calls": 1,
            "rm_calls": 0 if cell.rm == "none" else 1,
            "seconds": cell.seconds_per_sample * cell.budget,
            "policy_flops": policy_flops,
            "rm_flops": rm_flops,
            "flops": policy_flops + rm_flops,
        },
        "grade_details": {"pred": "42" if correct else "41", "gold": "42"},
        "info": {},
        "budget_unit": cell.budget_unit,
    }


#: The sampling settings a synthetic run records (RunSpec's defaults).
SAMPLING = {"temperature": 0.7, "top_p": 1.0, "max_tokens": 512}


def write_run(path: str | Path, cells: Sequence[FakeCell], *, tasks: Mapping[str, Mapping[str, Any]] | None = None,
              seed: int = 0, n_problems: Mapping[str, int] | None = None,
              config: Mapping[str, Any] | None = None, components: Mapping[str, Any] | None = None) -> Path:
    """Write a complete synthetic run directory at `path` and return it.

    `tasks` overrides the run.json task entries (version, data_fingerprint, n_problems); by default
    every task has version "1", fingerprint "fp-<task>" and n_problems = the largest cell's count
    (or `n_problems[task]`). A cell's metrics.json is written (with `cell` and `complete`, as the
    runner does) unless `write_metrics` is False on it. `config` overrides run.json "config" entries
    (default: tasks, seed and the SAMPLING settings); `components` is written as run.json "components".
    """
    path = Path(path)
    task_names = sorted({c.task for c in cells})
    counts = {t: max(len(c.correct) for c in cells if c.task == t) for t in task_names}
    counts.update(n_problems or {})
    task_info: dict[str, Any] = {t: {"version": "1", "data_fingerprint": f"fp-{t}", "n_problems": counts[t]}
                                 for t in task_names}
    for t, info in (tasks or {}).items():
        task_info[t] = {**task_info.get(t, {}), **info}
    run = {
        "schema_version": SCHEMA_VERSION,
        "prmbench_version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
        "status": "finished",
        "config": {"tasks": task_names, "seed": seed, **SAMPLING, **(config or {})},
        "versions": {"python": "3.11"},
        "git": {"commit": "0" * 40, "dirty": False},
        "hardware": {"cpu": "test"},
        "seed": seed,
        "plugins": [],
        "components": dict(components or {}),
        "tasks": task_info,
        "cells": [{"id": c.id, "task": c.task, "rm": c.rm, "strategy": c.strategy, "budget": c.budget,
                   "budget_unit": c.budget_unit, "policy": c.policy} for c in cells],
    }
    write_json_atomic(path / RUN_FILE, run)
    for c in cells:
        cell_dir = path / CELLS_DIR / c.id
        cell_dir.mkdir(parents=True, exist_ok=True)
        records = [make_record(c, pid, ok, seed) for pid, ok in zip(c.ids(), c.correct)] + list(c.extra_records)
        with open(cell_dir / SAMPLES_FILE, "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        if c.write_metrics:
            metrics = cell_metrics(records)
            metrics["cell"] = {"id": c.id, "task": c.task, "rm": c.rm, "strategy": c.strategy,
                               "budget": c.budget, "budget_unit": c.budget_unit, "policy": c.policy}
            metrics["complete"] = len(records) == task_info[c.task]["n_problems"]
            write_json_atomic(cell_dir / METRICS_FILE, metrics)
    return path


def outcomes(n: int, n_correct: int) -> list[bool]:
    """`n` outcomes of which the first `n_correct` are correct."""
    return [i < n_correct for i in range(n)]
