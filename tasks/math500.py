"""MATH-500: the 500-problem MATH test subset of *Let's Verify Step by Step* (Lightman et al., 2023).

Problems come from a local JSONL file or the Hugging Face hub; answers are the content of the
solution's last ``\\boxed{}`` and are graded against the data set's ``answer`` field with
math-verify (see `prmbench.math_grading`).
"""

from __future__ import annotations

import json
import os
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from prmbench.env import env_flag
from prmbench.errors import ConfigError, DataError
from prmbench.interfaces import Task
from prmbench.math_grading import check_equiv, last_boxed
from prmbench.tasks.boxed_answers import BoxedAnswers
from prmbench.types import Grade, Message, Problem

TASK_NAME = "math500"
REQUIRED_FIELDS = ("problem", "answer", "unique_id")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

SYSTEM_PROMPT = (
    "You are a careful mathematician. Solve the problem step by step. Separate consecutive steps "
    "with a blank line, and put only the final answer inside \\boxed{} at the end."
)
USER_TEMPLATE = (
    "{question}\n\n"
    "Reason step by step, separating the steps with blank lines, and write the final answer "
    "as \\boxed{{ANSWER}}."
)


def _math_verify_version() -> str:
    try:
        return _metadata.version("math-verify")
    except _metadata.PackageNotFoundError:  # pragma: no cover - a dependency of prmbench
        return "unknown"



def _fix_hint(split: str) -> str:
    return (
        f"Fix: pass a local copy with `--data-file {TASK_NAME}=PATH` (a JSONL file with the MATH-500 "
        f"fields problem, solution, answer, subject, level, unique_id), or set PRMBENCH_DATA_DIR to a "
        f"folder laid out as <dir>/{TASK_NAME}/{split}.jsonl."
    )


class Math500Task(BoxedAnswers, Task):
    """The MATH-500 benchmark: 500 competition problems with LaTeX final answers.

    Data source, first that applies: `data_file` (a JSONL file with the MATH-500 schema);
    ``$PRMBENCH_DATA_DIR/math500/<split>.jsonl`` when that variable is set and the file exists;
    ``datasets.load_dataset(source, split=split)`` from the Hugging Face hub (not attempted when
    ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set). Anything missing or malformed raises
    `DataError` saying how to fix it.

    Each problem is ``Problem(id=unique_id, task="math500", question=problem, reference=answer,
    metadata={"subject", "level", "solution"}, private_metadata=("solution",))``:
    strategies and reward models see its public view, without the answer and the worked solution.
    Steps are blank-line separated blocks (the base class default), the answer of a solution is
    its last ``\\boxed{}``, and grading compares it with the reference through math-verify, each
    check bounded by `grading_timeout` seconds.

    `version` rule: bump it whenever anything that can change results changes: prompt wording,
    row parsing or ids, answer extraction, `answer_key`, equivalence or grading logic. A new
    math-verify version is recorded in `config()` instead, so it needs no bump.
    """

    domain = "math"
    version = "1"

    def __init__(
        self,
        data_file: str | None = None,
        source: str = "HuggingFaceH4/MATH-500",
        split: str = "test",
        grading_timeout: float = 5.0,
    ) -> None:
        try:
            timeout = float(grading_timeout)
        except (TypeError, ValueError):
            timeout = float("nan")
        if isinstance(grading_timeout, bool) or not timeout > 0 or timeout == float("inf"):
            raise ConfigError(f"math500: grading_timeout must be a positive number of seconds, got {grading_timeout!r}")
        self.data_file = None if data_file in (None, "") else str(data_file)
        self.source = source
        self.split = split
        self.grading_timeout = timeout

    # -- identity ----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Arguments that affect results: the hub source and split, the grading timeout and the
        math-verify version (the local file path is left out: the data fingerprint covers it)."""
        return {
            "source": self.source,
            "split": self.split,
            "grading_timeout": self.grading_timeout,
            "math_verify": _math_verify_version(),
        }

    # -- data --------------------------------------------------------------------------------
    def load(self) -> list[Problem]:
        """All problems in the data set's order (see the class docstring for the source order)."""
        if self.data_file is not None:
            return self._load_jsonl(Path(self.data_file).expanduser())
        data_dir = os.environ.get("PRMBENCH_DATA_DIR")
        local = Path(data_dir).expanduser() / TASK_NAME / f"{self.split}.jsonl" if data_dir else None
        if local is not None and local.is_file():
            return self._load_jsonl(local)
        return self._load_hub(local)

    def _load_jsonl(self, path: Path) -> list[Problem]:
        if not path.is_file():
            raise DataError(f"{TASK_NAME} data file {path} does not exist (or is not a file). {_fix_hint(self.split)}")
        try:
            fh = path.open(encoding="utf-8-sig")
        except OSError as e:
            raise DataError(f"cannot read {TASK_NAME} data file {path}: {e}") from e
        with fh:
            return self._build(self._jsonl_rows(fh, path), str(path))

    @staticmethod
    def _jsonl_rows(lines: Iterable[str], path: Path) -> Iterator[tuple[str, Any]]:
        try:
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(
                        f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno}); each line must be one "
                        f"MATH-500 JSON object"
                    ) from None
                yield f"{path}:{lineno}", row
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e}); expected a JSONL file") from None

    def _load_hub(self, local: Path | None) -> list[Problem]:
        why_local = (
            f"PRMBENCH_DATA_DIR is set but {local} does not exist. " if local is not None
            else "PRMBENCH_DATA_DIR is not set. "
        )
        offline = [v for v in _OFFLINE_VARS if env_flag(v)]
        if offline:
            raise DataError(
                f"{TASK_NAME}: no local data and the Hugging Face hub is off ({'='.join([offline[0], os.environ[offline[0]]])}), "
                f"so {self.source!r} cannot be downloaded. {why_local}{_fix_hint(self.split)}"
            )
        try:
            import datasets

            ds = datasets.load_dataset(self.source, split=self.split)
            rows = [(f"{self.source}[{self.split}] row {i + 1}", dict(r)) for i, r in enumerate(ds)]
        except DataError:
            raise
        except Exception as e:  # network, missing dataset, auth, bad split, ...
            raise DataError(
                f"{TASK_NAME}: cannot load {self.source!r} (split {self.split!r}) from the Hugging Face hub: "
                f"{type(e).__name__}: {str(e)[:300]}. {why_local}{_fix_hint(self.split)}"
            ) from e
        return self._build(rows, f"{self.source}[{self.split}]")

    def _build(self, rows: Iterable[tuple[str, Any]], origin: str) -> list[Problem]:
        problems: list[Problem] = []
        seen: dict[str, str] = {}
        for where, row in rows:
            p = self._problem(where, row)
            if p.id in seen:
                raise DataError(f"{where}: duplicate unique_id {p.id!r} (first at {seen[p.id]})")
            seen[p.id] = where
            problems.append(p)
        if not problems:
            raise DataError(f"{origin}: no problems found (empty data). {_fix_hint(self.split)}")
        return problems

    @staticmethod
    def _problem(where: str, row: Any) -> Problem:
        if not isinstance(row, Mapping):
            raise DataError(f"{where}: expected a JSON object with the MATH-500 fields, got {type(row).__name__}")
        missing = [k for k in REQUIRED_FIELDS if not isinstance(row.get(k), str) or not row[k].strip()]
        if missing:
            raise DataError(
                f"{where}: missing or empty field(s) {', '.join(missing)} (each row needs the strings "
                f"{', '.join(REQUIRED_FIELDS)})"
            )
        return Problem(
            id=row["unique_id"],
            task=TASK_NAME,
            question=row["problem"],
            reference=row["answer"],
            metadata={"subject": row.get("subject"), "level": row.get("level"), "solution": row.get("solution")},
            private_metadata=("solution",),
        )

    # -- prompting ---------------------------------------------------------------------------
    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """A system message with the answer format and a user message with the problem."""
        return (
            Message(role="system", content=SYSTEM_PROMPT),
            Message(role="user", content=USER_TEMPLATE.format(question=problem.question.strip())),
        )

    # -- answers (extract_answer, answer_key, same_answer: BoxedAnswers) -----------------------
    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the completion's last boxed answer is equivalent to the reference.

        `details`: ``extracted`` (str or None), ``gold`` and ``reason`` (``no_boxed_answer``,
        ``equivalent``, ``not_equivalent``, ``timeout`` or ``error``).
        """
        if problem.reference is None:
            raise DataError(f"{TASK_NAME} problem {problem.id!r} has no reference answer to grade against")
        gold = problem.reference
        extracted = last_boxed(completion or "")
        if extracted is None:
            return Grade(False, {"extracted": None, "gold": gold, "reason": "no_boxed_answer"})
        res = check_equiv(extracted, gold, self.grading_timeout)
        return Grade(res.equal, {"extracted": extracted, "gold": gold, "reason": res.reason})
