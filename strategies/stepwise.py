"""Step-level search machinery shared by beam search, DVTS and MCTS.

A partial solution is a Candidate whose steps are the task's canonical steps
(`Task.split_steps`). Expanding it asks the policy for k continuations of the prefix
`join_steps(steps) + step_delimiter`, each stopping at the next step delimiter, and scores the k
new prefixes with the reward model. A continuation's finish reason decides the child's fate:

- "stop" (the delimiter): a partial solution that search may extend;
- "eos": a complete solution;
- "length" (the --max-tokens limit within one step): a truncated step, never a finished
  solution; the path ends there as a truncated candidate.

Expansions draw fresh sample indices from 2**20 upwards (pool samples use 0..N-1), one per
sample in the order the search asks, so every expansion has its own deterministic seed, the same
search replays identically, and searches that ask the same thing share the cache.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from prmbench.aggregate import check_aggregation
from prmbench.context import SearchContext
from prmbench.errors import ConfigError
from prmbench.interfaces import Strategy
from prmbench.types import Budget, Candidate

STEP_INDEX_BASE = 1 << 20
"""First sample index of step expansions (pool samples use 0..N-1)."""


class Expander:
    """Metered step expansions and rollouts of one search, with their unit costs.

    Every call is one unit of work for the budget check: strategies ask `ctx.exhausted()`
    before each. `max_unit_flops` is the most one unit cost, the bound on overshoot.
    """

    def __init__(self, ctx: SearchContext, max_depth: int):
        self.ctx = ctx
        self.task = ctx.task
        self.max_depth = max_depth
        self.next_index = STEP_INDEX_BASE
        self.units = 0
        self.max_unit_flops = 0.0

    def _prefix(self, steps: Sequence[str]) -> str:
        return self.task.join_steps(steps) + self.task.step_delimiter if steps else ""

    def _indices(self, k: int) -> int:
        start, self.next_index = self.next_index, self.next_index + k
        return start

    def _candidate(self, steps: tuple[str, ...], finish: str, tokens: int) -> Candidate:
        text = self.task.join_steps(steps)
        if finish == "stop" and len(steps) >= self.max_depth:
            finish = "length"  # the depth limit truncates a path that has not ended
        return Candidate(steps=steps, text=text, finish_reason=finish,  # type: ignore[arg-type]
                         completion_tokens=tokens, answer=self.task.extract_answer(text))

    def _charge_unit(self, before: float) -> None:
        self.units += 1
        self.max_unit_flops = max(self.max_unit_flops, self.ctx.spend.flops - before)

    def expand(self, parent: Candidate | None, k: int) -> list[Candidate]:
        """k scored children of `parent` (None: the empty solution), each one step longer.

        A continuation that holds no step is charged and dropped (so fewer than k children may
        come back), except that an empty continuation ending in eos completes the parent: the
        policy ended the solution there, and that complete solution is the child.
        """
        before = self.ctx.spend.flops
        steps = parent.steps if parent is not None else ()
        tokens = parent.completion_tokens if parent is not None else 0
        gens = self.ctx.generate(prefix=self._prefix(steps), n=k, start=self._indices(k),
                                 stop=(self.task.step_delimiter,))
        children = []
        for g in gens:
            new = tuple(self.task.split_steps(g.text))
            if new or (steps and g.finish_reason == "eos"):
                children.append(self._candidate(steps + new, g.finish_reason, tokens + g.completion_tokens))
        children = self.ctx.score(children) if children else []
        self._charge_unit(before)
        return children

    def rollout(self, parent: Candidate) -> Candidate:
        """One full continuation of `parent` to the end of a solution, scored by the RM."""
        before = self.ctx.spend.flops
        prefix = self._prefix(parent.steps)
        g = self.ctx.generate(prefix=prefix, n=1, start=self._indices(1))[0]
        cand = self.ctx.to_candidate(g, prefix=prefix)
        cand = replace(cand, completion_tokens=parent.completion_tokens + g.completion_tokens)
        cand = self.ctx.score([cand])[0]
        self._charge_unit(before)
        return cand

    def info(self) -> dict[str, Any]:
        """Counts for the record: units of work and the largest unit's FLOPs."""
        return {"units": self.units, "max_unit_flops": self.max_unit_flops}


def unfinished(cand: Candidate) -> Candidate:
    """A partial solution left when the search stopped: marked truncated, never finished."""
    return replace(cand, finish_reason="length")


def is_live(cand: Candidate) -> bool:
    """Whether a child is a partial solution that search may extend."""
    return cand.finish_reason == "stop"


class StepwiseStrategy(Strategy):
    """Common arguments of the step-level strategies.

    `expansions` (M, or MCTS's k) is the number of next steps sampled per expansion;
    `max_depth` the most steps a solution may have (a path reaching it unfinished is truncated);
    `aggregation` turns step scores into a solution score (default: the reward model's own).
    """

    stepwise = True
    uses_pool = False

    def __init__(self, expansions: int = 4, max_depth: int = 32, aggregation: str | None = None):
        for name, value in (("expansions", expansions), ("max_depth", max_depth)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{type(self).__name__}: {name} must be a positive integer (got {value!r}); "
                                  f"set it with --strategy-args {name}=4")
        self.expansions = expansions
        self.max_depth = max_depth
        self.aggregation = check_aggregation(aggregation) if aggregation else None

    def config(self) -> dict[str, Any]:
        """Expansions, depth limit and aggregation."""
        return {"expansions": self.expansions, "max_depth": self.max_depth, "aggregation": self.aggregation}

    def width(self, explicit: int | None, budget: Budget) -> int:
        """Beams or subtrees: `explicit`, else N // M in unit nominal (the literature's
        parameterisation), else M (the meter, not the width, decides how far the search goes)."""
        if explicit is not None:
            return explicit
        return max(1, budget.n // self.expansions) if budget.unit == "nominal" else self.expansions

    def start(self, ctx: SearchContext) -> Expander:
        """Apply the aggregation and make the search's expander."""
        if self.aggregation:
            ctx.aggregation = self.aggregation
        return Expander(ctx, self.max_depth)


def positive_or_none(owner: str, name: str, value: Any) -> int | None:
    """Validate an optional positive integer argument."""
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ConfigError(f"{owner}: {name} must be a positive integer or unset (got {value!r})")
    return value
