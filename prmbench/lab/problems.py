"""Seeded arithmetic word problems with a step structure: the data of the lab's two domains.

A problem is a start value and a chain of operations (``gains K`` = +K, ``loses K`` = -K) on a
running total. Its number of operations is the difficulty knob. The same problem has two
reference solutions, one step per operation:

- math: each step states one intermediate result (``27+8=35``), the last one ends with the boxed
  final answer (``30+3=33, \\boxed{33}``);
- code: a Python program, one statement per step (``n = 27``, ``n = n + 8``, ..., ``print(n)``).

Generation is a pure function of (seed, split, index): the same arguments give the same problems
on every machine. Splits draw from disjoint seed streams, so training problems (``train``) never
coincide with evaluation problems (``test``) by construction of the stream, and the lab's tasks
are sized to make accidental duplicates of a question rare (they do not matter for grading).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Mapping

from prmbench.errors import ConfigError

NAMES = ("Ann", "Bob", "Cal", "Dee", "Eva", "Fox", "Gus", "Hal")
ITEMS = ("coins", "cards", "shells", "stamps", "beads", "marbles")
SPLITS = ("train", "test")
#: Running totals stay in [LOW, HIGH] so every intermediate result has two digits.
LOW, HIGH = 10, 99


@dataclass(frozen=True)
class ArithProblem:
    """One generated problem: `start` and signed operations (`ops`: +k or -k), with its wording."""

    index: int
    name: str
    item: str
    start: int
    ops: tuple[int, ...]

    @property
    def totals(self) -> tuple[int, ...]:
        """The running total after each operation (the last one is the answer)."""
        out, value = [], self.start
        for op in self.ops:
            value += op
            out.append(value)
        return tuple(out)

    @property
    def answer(self) -> int:
        """The final total."""
        return self.totals[-1]

    @property
    def question(self) -> str:
        """The word problem, e.g. ``Ann has 27 coins, gains 8, loses 5, gains 3. How many?``."""
        moves = ", ".join(f"gains {op}" if op > 0 else f"loses {-op}" for op in self.ops)
        return f"{self.name} has {self.start} {self.item}, {moves}. How many?"

    def math_steps(self, slips: Mapping[int, int] | None = None) -> list[str]:
        """The math solution, one intermediate result per step, boxed answer last.

        `slips` (step index -> offset) makes a fallible teacher's solution: the result stated at
        that step is off by the offset and later steps go on from the wrong value (so the boxed
        answer is wrong); None or empty: the reference solution.
        """
        steps, value = [], self.start
        for i, op in enumerate(self.ops):
            total = value + op + (slips or {}).get(i, 0)
            steps.append(f"{value}{'+' if op > 0 else '-'}{abs(op)}={total}")
            value = total
        steps[-1] += f", \\boxed{{{value}}}"
        return steps

    def code_steps(self, slips: Mapping[int, int] | None = None) -> list[str]:
        """The program, one statement per step, printing the answer.

        `slips` (step index -> offset): that statement's operand is off by the offset (a
        mis-copied number), so the printed answer is wrong; None or empty: the reference program.
        """
        steps = [f"n = {self.start}"]
        for i, op in enumerate(self.ops):
            k = abs(op) + (slips or {}).get(i, 0)
            steps.append(f"n = n {'+' if op > 0 else '-'} {k}")
        steps.append("print(n)")
        return steps

    def draw_slips(self, rng: random.Random, rate: float, max_operand: int = 9) -> dict[int, int]:
        """A fallible teacher's slips: each step independently with probability `rate`, offset +-1 or +-2.

        An offset keeps a code operand in 1..`max_operand`. Two slips of one solution may cancel
        (rarely): the answer is then right, and Monte Carlo labels see it so.
        """
        out = {}
        for i, op in enumerate(self.ops):
            if rng.random() < rate:
                d = rng.choice((1, -1)) * rng.choice((1, 2))
                out[i] = d if 1 <= abs(op) + d <= max_operand else -d
        return out


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"prmbench-lab\x00{seed}\x00{split}\x00{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def generate(seed: int, split: str, index: int, min_steps: int, max_steps: int, max_operand: int = 9) -> ArithProblem:
    """Problem `index` of (`seed`, `split`): `min_steps`..`max_steps` operations of 1..`max_operand`."""
    check_sizes(min_steps, max_steps, max_operand, split)
    rng = _rng(seed, split, index)
    n_ops = rng.randint(min_steps, max_steps)
    start = rng.randint(LOW + max_operand, HIGH - max_operand)
    ops, value = [], start
    for _ in range(n_ops):
        k = rng.randint(1, max_operand)
        sign = rng.choice((1, -1))
        if not LOW <= value + sign * k <= HIGH:
            sign = -sign
        ops.append(sign * k)
        value += sign * k
    return ArithProblem(index=index, name=rng.choice(NAMES), item=rng.choice(ITEMS), start=start, ops=tuple(ops))


def check_sizes(min_steps: int, max_steps: int, max_operand: int, split: str) -> None:
    """Raise ConfigError (naming the fix) for an impossible difficulty or an unknown split."""
    for name, v in (("min_steps", min_steps), ("max_steps", max_steps), ("max_operand", max_operand)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"lab task: {name} must be a positive integer (got {v!r}), e.g. --task-args {name}=3")
    if min_steps > max_steps:
        raise ConfigError(f"lab task: min_steps ({min_steps}) exceeds max_steps ({max_steps}); pass min_steps<=max_steps")
    if max_operand > (HIGH - LOW) // 2:
        raise ConfigError(f"lab task: max_operand must be at most {(HIGH - LOW) // 2} (got {max_operand})")
    if split not in SPLITS:
        raise ConfigError(f"lab task: split must be one of {', '.join(SPLITS)} (got {split!r})")
