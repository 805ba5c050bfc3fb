"""`lab_math`: the lab's math domain, seeded multi-step arithmetic word problems.

A solution states one intermediate result per step (steps separated by blank lines) and ends
with ``\\boxed{ANSWER}``; grading compares the last boxed answer with the reference exactly as
MATH-500 does (`prmbench.math_grading`). See `prmbench.lab.problems` for the generator.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prmbench.interfaces import Task
from prmbench.math_grading import answer_key as _answer_key
from prmbench.math_grading import check_equiv, last_boxed
from prmbench.tasks.boxed_answers import BoxedAnswers
from prmbench.tasks.lab_base import LabProblems
from prmbench.types import Grade, Problem


class LabMathTask(BoxedAnswers, LabProblems, Task):
    """Arithmetic word problems answered in math notation (domain ``math``).

    Args: `n_problems` (default 200), `min_steps`/`max_steps` (operations per problem, the
    difficulty knob; default 2..4), `max_operand` (default 9), `seed` (default 0) and `split`
    (``test``, default, or ``train``: disjoint seed streams).
    """

    name: ClassVar[str] = "lab_math"
    domain: ClassVar[str] = "math"
    version: ClassVar[str] = "1"
    instruction: ClassVar[str] = "Math:"

    def __init__(self, n_problems: int = 200, min_steps: int = 2, max_steps: int = 4, max_operand: int = 9,
                 seed: int = 0, split: str = "test", grading_timeout: float = 5.0) -> None:
        self._init_problems(n_problems, min_steps, max_steps, max_operand, seed, split)
        self.grading_timeout = float(grading_timeout)

    def config(self) -> dict[str, Any]:
        """Generator arguments and the grading timeout."""
        return {**self.problem_config(), "grading_timeout": self.grading_timeout}

    def reference_solution(self, problem: Problem) -> str:
        """The correct step-by-step solution of a loaded problem."""
        return self.join_steps(self.arith(int(problem.metadata["index"])).math_steps())

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the last boxed answer is equivalent to the reference (MATH-500 grading)."""
        gold = problem.reference or ""
        extracted = last_boxed(completion)
        if extracted is None:
            return Grade(correct=False, details={"extracted": None, "gold": gold, "reason": "no_boxed_answer"})
        if _answer_key(extracted) == _answer_key(gold):
            return Grade(correct=True, details={"extracted": extracted, "gold": gold, "reason": "equivalent"})
        verdict = check_equiv(extracted, gold, self.grading_timeout)
        return Grade(correct=verdict.equal, details={"extracted": extracted, "gold": gold, "reason": verdict.reason})
