"""Scoring saved solutions with a reward model: the `prmbench score` workflow.

Input rows (JSONL, JSONL.gz or one JSON array, e.g. ProcessBench's `*.json`) come in two forms:

- **steps rows**: `problem` (or `question`) and `steps`, a list of step strings, as in
  ProcessBench (`{"problem", "steps", "label", "final_answer_correct", ...}`);
- **task rows**: `problem_id` (or `task_id`) and `completion` (or `solution`), with `--task T`:
  the question is the task's problem text and the task's `split_steps` cuts the completion.

Each output row is the input row plus `step_scores` (one per scored step), `score` (the
aggregate with the reward model's aggregation) and `truncated` (True when the input was longer
than the model reads, so the last steps have no score; see prmbench.reward_models.hf_rm). Rows are
scored in chunks across problems (transformers reward models batch the whole chunk) and yielded
chunk by chunk in input order, so a caller that writes each chunk keeps everything scored so far.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from prmbench.aggregate import aggregate
from prmbench.errors import DataError
from prmbench.evaluate import ID_FIELDS, TEXT_FIELDS, problem_of
from prmbench.interfaces import GraderRewardModel, RewardModel, Task
from prmbench.jsonl import read_jsonl_rows
from prmbench.types import Grade, Message, Problem, RMOutput

QUESTION_FIELDS = ("problem", "question")


class StepsRowsTask(Task):
    """The stand-in task of steps rows: their steps are already split, so only `join_steps` is used.

    Reward models that need a real task (the oracle grades, exec_public runs code) are told to
    pass --task.
    """

    name = "samples"

    def load(self) -> list[Problem]:
        """No data set behind steps rows."""
        return []

    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """The question as a user message."""
        return (Message("user", problem.question),)

    def extract_answer(self, text: str) -> str | None:
        """Steps rows carry no answer format."""
        return None

    def same_answer(self, a: str, b: str) -> bool:
        """Plain string equality."""
        return a == b

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Refused: grading needs a task's hidden answers."""
        raise DataError("this reward model grades against a task's hidden answers; score task rows "
                        "(problem_id + completion) with --task T instead of steps rows")


def read_sample_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(position, row) pairs of a JSONL/JSONL.gz file or of a file holding one JSON array of objects."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"samples file {p} does not exist")
    with open(p, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"["):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"samples file {p} starts like a JSON array but is not valid JSON ({e})") from None
        bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(f"{p}: item {bad} of the JSON array is not an object")
        return list(enumerate(data))
    return read_jsonl_rows(p, what="samples file")


def _first(row: dict[str, Any], names: Sequence[str]) -> Any:
    return next((row[n] for n in names if n in row), None)


def parse_rows(rows: list[tuple[int, dict[str, Any]]], path: Path, task: Task | None) -> list[tuple[Problem, list[str]]]:
    """Validate every row first (a bad row fails fast, naming its line), then return (problem, steps) pairs."""
    problems = {p.id: p for p in task.load()} if task is not None else {}
    out = []
    for no, row in rows:
        where = f"{path}:{no}"
        if "steps" in row:
            steps, question = row["steps"], _first(row, QUESTION_FIELDS)
            if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                raise DataError(f"{where}: `steps` must be a list of strings")
            if not isinstance(question, str):
                raise DataError(f"{where}: a steps row needs the question as a string in `problem` or `question`")
            pid = str(row.get("id", _first(row, ID_FIELDS) or no))
            out.append((Problem(id=pid, task=task.name if task else "samples", question=question), list(steps)))
            continue
        pid, text = _first(row, ID_FIELDS), _first(row, TEXT_FIELDS)
        if pid is None or text is None:
            raise DataError(f"{where}: a row needs either `problem` + `steps` (ProcessBench style) or "
                            f"`problem_id` + `completion` (with --task)")
        if task is None:
            raise DataError(f"{where}: rows with a completion need --task T, whose problems and step split are used")
        if not isinstance(text, str):
            raise DataError(f"{where}: the completion must be a string, got {type(text).__name__}")
        out.append((problem_of(problems, pid, task, where), task.split_steps(text)))
    return out


def score_pairs(rm: RewardModel, task: Task, chunk: Sequence[tuple[Problem, Sequence[str]]],
                texts: Sequence[Any] | None = None) -> list[RMOutput]:
    """One RMOutput per (problem, steps) pair, in order: one batched call across problems when the
    reward model has `score_items` (the transformers families), else one `score` call per pair.
    A grader reward model (the oracle) gets the task's verdicts on each row's own text (`texts`;
    None: the steps joined)."""
    if isinstance(rm, GraderRewardModel):
        texts = list(texts) if texts is not None else [None] * len(chunk)
        return rm.from_grades(task.grade_many([(p, t if isinstance(t, str) else task.join_steps(steps))
                                               for (p, steps), t in zip(chunk, texts)]))
    score_items = getattr(rm, "score_items", None)
    if score_items is not None:  # batched across problems
        return list(score_items(task, [(p.question, steps) for p, steps in chunk]))
    return [rm.score(task, p.public_view(), [steps])[0] for p, steps in chunk]  # references stay with the grader


def score_samples(rm: RewardModel, samples: str | Path, task: Task | None = None,
                  chunk_size: int = 256) -> Iterator[list[dict[str, Any]]]:
    """Score every row of a samples file; yields lists of output rows (chunks), in input order."""
    path = Path(samples)
    rows = read_sample_rows(path)
    pairs = parse_rows(rows, path, task)
    scoring_task = task if task is not None else StepsRowsTask()
    for start in range(0, len(rows), chunk_size):
        chunk = pairs[start:start + chunk_size]
        outs = score_pairs(rm, scoring_task, chunk,
                           [None if "steps" in row else _first(row, TEXT_FIELDS) for _, row in rows[start:start + chunk_size]])
        yield [
            {**row, "step_scores": list(o.step_scores), "score": aggregate(o.step_scores, rm.aggregation),
             "truncated": o.truncated}
            for (_, row), o in zip(rows[start:start + chunk_size], outs)
        ]
