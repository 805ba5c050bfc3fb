"""Step-level tasks: tasks whose problems are labelled solutions to score, not questions to solve.

A `StepTask` is a Task (registered through the same `register_tasks` hook, built by the same
registry) that needs no policy and no strategy: the runner (prmbench.step_runner) scores each
item's steps with every reward model, the task turns (item, RM output) into a record and a list
of records into metrics. Its gold labels stay in `StepItem.gold`; a reward model sees only the
question and the steps.
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

from prmbench.errors import ConfigError
from prmbench.interfaces import Task
from prmbench.types import Grade, Message, Problem, RMOutput


@dataclass(frozen=True)
class StepItem:
    """One labelled solution: `steps` of `question`, scored by a reward model as they are.

    `gold` holds the labels the task's metrics need (JSON values; never shown to a reward model);
    `subset` names the part of the task it belongs to (ProcessBench's gsm8k, PRMBench's class).
    """

    id: str
    question: str
    steps: tuple[str, ...]
    gold: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    subset: str = ""


class StepTask(Task):
    """Base of step-level tasks: `load_items`, `record` and `evaluate` are the task's job.

    The policy-side methods of Task (`prompt`, `extract_answer`, `same_answer`, `grade`) are
    refused: a step-level task has nothing to generate or grade.
    """

    step_level: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    """Metric keys the runner's log line shows for a finished cell."""
    _items: list[StepItem] | None = None

    @abstractmethod
    def read_items(self) -> list[StepItem]:
        """Read every labelled solution of the task, in the data set's order (called once)."""

    def load_items(self) -> list[StepItem]:
        """Every labelled solution of the task (read on first use, then kept)."""
        if self._items is None:
            self._items = self.read_items()
        return list(self._items)

    def select(self, items: Sequence[StepItem], limit: int | None) -> list[StepItem]:
        """The items a run with `--limit` evaluates (default: the first `limit`)."""
        return list(items[:limit] if limit else items)

    @abstractmethod
    def record(self, item: StepItem, output: RMOutput) -> dict[str, Any]:
        """The task's fields of the item's record (gold labels, scores, predictions)."""

    @abstractmethod
    def evaluate(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(records with their final predictions, metrics) of a finished cell; the predictions
        change only when the threshold is calibrated on the records themselves."""

    # -- Task plumbing -----------------------------------------------------------------------------
    def load(self) -> list[Problem]:
        """The items as Problems (question only; steps and labels in metadata)."""
        return [Problem(id=i.id, task=self.name, question=i.question,
                        metadata={"steps": list(i.steps), "subset": i.subset}) for i in self.load_items()]

    def data_fingerprint(self, problems: Sequence[Problem] | None = None) -> str:
        """A hash of every item: ids, questions, steps and gold labels."""
        h = hashlib.sha256()
        for i in self.load_items():
            h.update(json.dumps([i.id, i.question, list(i.steps), dict(i.gold), i.subset], sort_keys=True).encode())
        return h.hexdigest()[:16]

    def _refuse(self) -> ConfigError:
        return ConfigError(f"task {self.name!r} is a step-level task: it scores labelled solutions with a reward model "
                           f"and has no prompt, answers or grader; run it with --tasks {self.name} --rm R only")

    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """Refused (no policy runs on a step-level task)."""
        raise self._refuse()

    def extract_answer(self, text: str) -> str | None:
        """Refused."""
        raise self._refuse()

    def same_answer(self, a: str, b: str) -> bool:
        """Refused."""
        raise self._refuse()

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Refused: a reward model that grades (the oracle) cannot score a step-level task."""
        raise self._refuse()


def is_step_task(task: Any) -> bool:
    """Whether a built task is step-level."""
    return bool(getattr(task, "step_level", False))


def require_step_task(task: Any, name: str) -> StepTask:
    """The task itself when it is step-level, else a ConfigError naming the step-level tasks' use."""
    if not is_step_task(task):
        raise ConfigError(f"task {name!r} is not a step-level task (processbench_*, prm800k_test, prmbench_prm800k); "
                          f"search tasks need --policy, --strategy and --budget")
    return task  # type: ignore[no-any-return]
