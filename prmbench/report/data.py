"""The data of a report page, read from run directories.

The page carries one small JSON summary (cells, problems, per-cell outcomes for the problem
list) and, per cell and chunk of problems, a JSON block with the full records and search trees
that the browser parses only when one of those problems is opened (lazy: a 500 x 30 page opens
quickly; benchmarks/bench_report_load.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from prmbench.leaderboard import _run_labels, leaderboard_table
from prmbench.results import CELLS_DIR, METRICS_FILE, TREES_FILE, RunResult, load_run


@dataclass(frozen=True)
class CellData:
    """One search cell of the page: its leaderboard row, outcomes by problem, and details."""

    key: str  # unique over the page: run label / cell id
    row: dict[str, Any]
    outcomes: dict[str, list[Any]]  # problem key -> [correct, score, FLOPs, seconds]
    details: dict[str, Any]  # problem key -> {"record": ..., "tree": ... | None}
    n_trees: int


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows: search cells, step-level cells, problems, the runs' identity."""

    runs: list[RunResult]
    board: Any  # the leaderboard DataFrame (prmbench.leaderboard.leaderboard_table)
    cells: list[CellData]
    step_cells: list[dict[str, Any]]
    problems: list[dict[str, Any]]  # {"key", "task", "id"}
    rm_sizes: dict[str, float | None]  # reward model -> parameters (from run.json components)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if hasattr(x, "item"):
        return _clean(x.item())
    return x


def read_trees(cell_dir: Path) -> dict[str, dict[str, Any]]:
    """Trees of a cell by problem id (the last row of a problem wins; unreadable lines skipped)."""
    path = cell_dir / TREES_FILE
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn line of an interrupted run
        if isinstance(row, dict) and "problem_id" in row:
            out[str(row["problem_id"])] = row
    return out


def step_rows(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The step-level table: prmbench.step_report.step_table where this prmbench has it, else each
    step-level cell's metrics.json numbers (`_step_cells`)."""
    try:
        from prmbench.step_report import step_table  # type: ignore[import-not-found]
    except ImportError:
        return [row for label, run in zip(_run_labels(runs), runs) for row in _step_cells(label, run)]
    return [{k: _clean(v) for k, v in row.items()} for row in step_table(runs).to_dict("records")]


def _step_cells(label: str, run: RunResult) -> list[dict[str, Any]]:
    """Step-level cells (TASK--RM, `kind: step` in run.json's cells): their metrics.json numbers."""
    out = []
    for c in (c for c in run.run.get("cells", []) if c.get("kind") == "step"):
        path = run.path / CELLS_DIR / str(c.get("id")) / METRICS_FILE
        metrics = json.loads(path.read_text()) if path.is_file() else {}
        row = {"run": label, "cell": c.get("id"), "task": c.get("task"), "rm": c.get("rm")}
        for k, v in metrics.items():
            if isinstance(v, (int, float, str, bool)) and k not in row:
                row[k] = _clean(v)
        out.append(row)
    return out


def load_report_data(paths: Sequence[str | Path]) -> ReportData:
    """Read every run (prmbench.results.load_run) into the page's data."""
    runs = [load_run(p) for p in paths]
    search_runs = [RunResult(r.path, r.run, [c for c in r.cells if c.strategy and getattr(c, "kind", "search") != "step"])
                   for r in runs]
    board = leaderboard_table(search_runs)
    labels = dict(zip(board["cell_id"] + "\0" + board["run"], board.to_dict("records")))
    cells: list[CellData] = []
    problems: dict[str, dict[str, Any]] = {}
    step_cells = step_rows(runs)
    rm_sizes: dict[str, float | None] = {}
    for label, run in zip(_run_labels(runs), runs):
        for name, comp in ((run.run.get("components") or {}).get("rms") or {}).items():
            rm_sizes.setdefault(name, comp.get("num_parameters"))
        for cell in run.cells:
            if getattr(cell, "kind", "search") == "step" or not cell.strategy:
                continue
            trees = read_trees(run.path / CELLS_DIR / cell.id)
            outcomes, details = {}, {}
            for rec in cell.records:
                pkey = f"{cell.task}/{rec['problem_id']}"
                problems.setdefault(pkey, {"key": pkey, "task": cell.task, "id": str(rec["problem_id"])})
                spend = rec.get("spend") or {}
                info = rec.get("info") or {}
                outcomes[pkey] = [bool(rec.get("correct")), _clean(info.get("chosen_score")),
                                  _clean(spend.get("flops")), _clean(info.get("wall_seconds", spend.get("seconds")))]
                details[pkey] = {"record": rec, "tree": trees.get(str(rec["problem_id"]))}
            row = {k: _clean(v) for k, v in labels.get(cell.id + "\0" + label, {}).items()}
            cells.append(CellData(f"{label}/{cell.id}", row, outcomes, details, sum(d["tree"] is not None for d in details.values())))
    return ReportData(runs, board, cells, step_cells, sorted(problems.values(), key=lambda p: (p["task"], p["id"])),
                      rm_sizes)
