"""Grading saved generations: the `prmbench evaluate-samples` workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from prmbench.errors import DataError
from prmbench.interfaces import Task
from prmbench.jsonl import read_jsonl_rows
from prmbench.types import Problem

ID_FIELDS = ("problem_id", "task_id")
TEXT_FIELDS = ("completion", "solution")
#: Rows graded per `Task.grade_many` call.
GRADE_CHUNK = 16


def _field(row: dict[str, Any], names: tuple[str, ...], path: Path, line: int, what: str) -> Any:
    for n in names:
        if n in row:
            return row[n]
    raise DataError(f"{path}:{line}: row has no {what} field (expected one of: {', '.join(names)})")


def problem_of(problems: dict[str, Problem], pid: Any, task: Task, where: str) -> Problem:
    """The task's problem `pid` of a samples row at `where` (file:line), or a DataError naming the id format."""
    if str(pid) not in problems:
        sample = ", ".join(list(problems)[:3])
        raise DataError(f"{where}: problem id {pid!r} is not in task {task.name!r} "
                        f"(ids look like: {sample}); use the task's own ids")
    return problems[str(pid)]


def evaluate_samples(task: Task, samples: str | Path) -> Iterator[dict[str, Any]]:
    """Grade every row of a samples file; yields input fields + `correct` + `details`, in order.

    All rows are validated (ids known to the task, a completion present) before grading starts,
    so a bad row fails fast with its line number.
    """
    path = Path(samples)
    rows = read_jsonl_rows(path, what="samples file")
    problems = {p.id: p for p in task.load()}
    checked = []
    for line, row in rows:
        pid = str(_field(row, ID_FIELDS, path, line, "problem id"))
        text = _field(row, TEXT_FIELDS, path, line, "completion")
        if not isinstance(text, str):
            raise DataError(f"{path}:{line}: the completion must be a string, got {type(text).__name__}")
        checked.append((row, problem_of(problems, pid, task, f"{path}:{line}"), text))
    for start in range(0, len(checked), GRADE_CHUNK):  # chunks: parallel grading, rows still stream out
        chunk = checked[start:start + GRADE_CHUNK]
        for (row, _, _), grade in zip(chunk, task.grade_many([(p, t) for _, p, t in chunk])):
            yield {**row, "correct": bool(grade.correct), "details": dict(grade.details)}
