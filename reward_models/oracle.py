"""The oracle reward model: the task's own grader, an upper bound for selection."""

from __future__ import annotations

from typing import ClassVar, Sequence

from prmbench.interfaces import GraderRewardModel, Task
from prmbench.types import Grade, Problem, RMOutput


class OracleRM(GraderRewardModel):
    """Scores a candidate 1.0 when the task grades it correct, else 0.0.

    An outcome reward model (one score per candidate) that measures what perfect selection would
    achieve (best-of-N with the oracle = pass@N), so it is a ceiling for real reward models and
    must never be reported as one. In a run it reads no reference itself: the runner grades each
    candidate's exact text with the task's grader and passes the verdicts to `from_grades`
    (see `prmbench.context.ModelCalls.score`).
    """

    kind: ClassVar[str] = "orm"
    version: ClassVar[str] = "2"

    def from_grades(self, grades: Sequence[Grade]) -> list[RMOutput]:
        """1.0 for a correct verdict, else 0.0."""
        return [RMOutput(step_scores=(1.0 if g.correct else 0.0,)) for g in grades]

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """Outside a run (`prmbench score`), where only steps are known: grade the joined steps
        against `problem`, which must then be the full problem the task loaded."""
        return self.from_grades(task.grade_many([(problem, task.join_steps(steps)) for steps in candidates]))
