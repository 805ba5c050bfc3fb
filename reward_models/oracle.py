"""The oracle reward model: the task's own grader, an upper bound for selection."""

from __future__ import annotations

from typing import ClassVar, Sequence

from prmbench.interfaces import RewardModel, Task
from prmbench.types import Problem, RMOutput


class OracleRM(RewardModel):
    """Scores a candidate 1.0 when the task grades its full text correct, else 0.0.

    An outcome reward model (one score per candidate) that reads the hidden reference: it
    measures what perfect selection would achieve (best-of-N with the oracle = pass@N), so it is
    a ceiling for real reward models and must never be reported as one.
    """

    kind: ClassVar[str] = "orm"
    version: ClassVar[str] = "1"

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """Grade each candidate's joined steps."""
        out = []
        for steps in candidates:
            ok = bool(steps) and task.grade(problem, task.join_steps(steps)).correct
            out.append(RMOutput(step_scores=(1.0 if ok else 0.0,)))
        return out
