"""The exec_public outcome reward model: the share of a problem's public examples a program passes."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from prmbench.errors import ConfigError
from prmbench.interfaces import RewardModel, Task
from prmbench.types import Problem, RMOutput


class ExecPublicRM(RewardModel):
    """Scores a candidate program by running it on the problem's public examples in the sandbox.

    An outcome reward model (one score per candidate): the fraction of public examples (those a
    user of the benchmark may see: docstring examples, public test cases) the extracted program
    passes. Hidden tests are never run, so selection by it is legitimate. Works with every code
    task (tasks that provide `public_pass_fraction`); on other tasks it refuses with a clear error.
    """

    kind: ClassVar[str] = "orm"
    version: ClassVar[str] = "1"

    def config(self) -> dict[str, Any]:
        """No arguments: the score is defined by the task's public examples."""
        return {}

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """Run each candidate's program on the public examples."""
        run_public = getattr(task, "public_pass_fraction", None)
        if run_public is None:
            raise ConfigError(f"reward model exec_public needs a code task with public examples; "
                              f"task {task.name!r} has none (use it with humaneval, humaneval_plus, mbpp_plus, livecodebench)")
        out = []
        for steps in candidates:
            code = task.extract_answer(task.join_steps(steps)) if steps else None
            out.append(RMOutput(step_scores=(float(run_public(problem, code)) if code else 0.0,)))
        return out
