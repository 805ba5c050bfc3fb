"""`lab_code`: the lab's code domain, the same word problems solved by short Python programs.

A solution is a program, one statement per step (steps separated by blank lines), that prints
the answer. Grading runs it in `prmbench.sandbox` with no input and compares what it printed
with the reference on the trusted side: the expected answer never enters the sandbox.
Voting keys are the programs' printed outputs (running a program with no input uses nothing
hidden: the problem has no tests, only the grader's reference).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from prmbench.errors import PrmbenchError
from prmbench.sandbox import Limits
from prmbench.tasks.code_base import CodeTask
from prmbench.tasks.lab_base import LabProblems
from prmbench.types import Grade, Problem

#: Limits for one lab program (they are one-liners: anything slow is wrong).
LIMITS = Limits(wall_seconds=5.0, cpu_seconds=2.0, memory_mb=256, max_processes=4, max_output_bytes=10_000)


class LabCodeTask(LabProblems, CodeTask):
    """Arithmetic word problems answered by Python programs (domain ``code``).

    Args as `lab_math` (`n_problems`, `min_steps`, `max_steps`, `max_operand`, `seed`,
    `split`) plus the sandbox options of `CodeTask` (`isolation`, `allow_unsafe`, `workers`).
    """

    name: ClassVar[str] = "lab_code"
    version: ClassVar[str] = "1"
    instruction: ClassVar[str] = "Code:"

    def __init__(self, n_problems: int = 200, min_steps: int = 2, max_steps: int = 4, max_operand: int = 9,
                 seed: int = 0, split: str = "test", isolation: str = "auto", allow_unsafe: bool = False,
                 workers: int | None = None) -> None:
        CodeTask.__init__(self, step_split="blank_lines", isolation=isolation, allow_unsafe=allow_unsafe,
                          workers=workers)
        self._init_problems(n_problems, min_steps, max_steps, max_operand, seed, split)

    def config(self) -> dict[str, Any]:
        """Generator arguments (the sandbox level is recorded per grade)."""
        return {**self.problem_config(), "step_split": self.step_split}

    def reference_solution(self, problem: Problem) -> str:
        """The correct program of a loaded problem, one statement per step."""
        return self.join_steps(self.arith(int(problem.metadata["index"])).code_steps())

    def _printed(self, codes: Sequence[str]) -> list[Any]:
        """Run each program (no input) in the sandbox; (status, stdout stripped, isolation) each."""
        results = self.sandbox.run_many(list(codes), None, LIMITS)
        return [(r.status, r.stdout.strip(), r.isolation) for r in results]

    def public_outcomes(self, problem: Problem, codes: Sequence[str]) -> list[list[tuple[bool | None, Any]]]:
        """Each program's observed behaviour: its status and printed output (passed unknown: None)."""
        return [[(None, [status, out])] for status, out, _ in self._printed(codes)] if codes else []

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the program, run in the sandbox, exits cleanly and prints exactly the answer.

        `details`: ``status`` (the sandbox status), ``printed`` (at most 200 characters), ``isolation``
        and ``reason`` (``no_code``, ``passed``, ``wrong_answer``, ``runtime_error``, ...). A sandbox
        failure is never scored: it raises `PrmbenchError` (the program's fate is unknown).
        """
        code = self.extract_answer(completion)
        if code is None:
            return Grade(correct=False, details={"reason": "no_code"})
        status, printed, isolation = self._printed([code])[0]
        correct = status == "ok" and printed == (problem.reference or "").strip()
        reason = "passed" if correct else ("wrong_answer" if status == "ok" else status)
        if status == "sandbox_error":
            raise PrmbenchError(f"{self.name}: the sandbox failed on problem {problem.id} (an infrastructure "
                                f"fault, not a verdict); check `prmbench ls` sandbox support and rerun with --resume")
        details = {"status": status, "printed": printed[:200], "isolation": isolation, "reason": reason}
        return Grade(correct=correct, details=details)
