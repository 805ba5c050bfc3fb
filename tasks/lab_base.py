"""What the lab's two tasks share: loading seeded arithmetic problems and one-line prompts."""

from __future__ import annotations

from typing import Any, ClassVar

from prmbench.errors import ConfigError
from prmbench.lab.problems import ArithProblem, check_sizes, generate
from prmbench.types import Message, Problem


class LabProblems:
    """Mixin: `n_problems` generated problems of (`seed`, `split`) with `min_steps..max_steps` operations.

    Each problem is ``Problem(id="<task>/<split>/<i>", question=<word problem>, reference=<answer>,
    metadata={"n_steps": ...})``. The reference is the grader's only: the public view drops it.
    """

    name: ClassVar[str]
    #: The task's prompt asks for this kind of solution (set by the subclass).
    instruction: ClassVar[str] = ""

    def _init_problems(self, n_problems: int, min_steps: int, max_steps: int, max_operand: int,
                       seed: int, split: str) -> None:
        if isinstance(n_problems, bool) or not isinstance(n_problems, int) or n_problems < 1:
            raise ConfigError(f"{self.name}: n_problems must be a positive integer (got {n_problems!r}), "
                              f"e.g. --task-args n_problems=100")
        check_sizes(min_steps, max_steps, max_operand, split)
        self.n_problems, self.min_steps, self.max_steps = n_problems, min_steps, max_steps
        self.max_operand, self.seed, self.split = max_operand, int(seed), split

    def problem_config(self) -> dict[str, Any]:
        """The generator arguments (everything that decides the problems)."""
        return {"n_problems": self.n_problems, "min_steps": self.min_steps, "max_steps": self.max_steps,
                "max_operand": self.max_operand, "seed": self.seed, "split": self.split}

    def arith(self, index: int) -> ArithProblem:
        """The generated problem behind index `index`."""
        return generate(self.seed, self.split, index, self.min_steps, self.max_steps, self.max_operand)

    def load(self) -> list[Problem]:
        """The `n_problems` problems in index order."""
        out = []
        for i in range(self.n_problems):
            a = self.arith(i)
            out.append(Problem(id=f"{self.name}/{self.split}/{i}", task=self.name, question=a.question,
                               reference=str(a.answer), metadata={"n_steps": len(a.ops), "index": i}))
        return out

    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """One short user message: the word problem (small lab models read every character)."""
        return (Message(role="user", content=f"{problem.question} {self.instruction}"),)
