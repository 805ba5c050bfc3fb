"""The random reward model: seeded uniform scores, a lower bound for selection."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Sequence

from prmbench.interfaces import RewardModel, Task
from prmbench.types import Problem, RMOutput


class RandomRM(RewardModel):
    """A process reward model that gives every step a uniform random score in [0, 1).

    The score of step k is a hash of (seed, problem id, steps 1..k), so it depends only on the
    solution prefix: the same prefix always gets the same score, whatever the batch or call
    order, and a different seed gives an independent draw. Selection with it is chance-level.
    """

    kind: ClassVar[str] = "prm"
    version: ClassVar[str] = "1"

    def __init__(self, seed: int = 0, aggregation: str = "last"):
        self.seed = int(seed)
        self.aggregation = aggregation

    def config(self) -> dict[str, Any]:
        """The seed and aggregation."""
        return {"seed": self.seed, "aggregation": self.aggregation}

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """Hash-based uniform scores, one per step."""
        out = []
        for steps in candidates:
            h = hashlib.sha256(f"{self.seed}\x00{problem.id}".encode())
            scores = []
            for step in steps:
                h.update(b"\x00" + step.encode())
                scores.append(int.from_bytes(h.copy().digest()[:8], "little") / 2**64)
            out.append(RMOutput(step_scores=tuple(scores)))
        return out
