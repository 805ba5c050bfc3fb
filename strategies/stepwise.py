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
sample in the order the search draws them, so every expansion has its own deterministic seed, the
same search replays identically, and searches that ask the same thing share the cache.

Under a cap (unit n's allowance, or tokens | flops | seconds) every unit of work (one sample plus
its score) is sized to what the rest of the budget affords (`Expander`, prmbench.strategies.sizing):
spend exceeds the cap by at most one sample plus its score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from prmbench.aggregate import check_aggregation
from prmbench.errors import ConfigError
from prmbench.interfaces import SearchContext, Strategy
from prmbench.strategies.sizing import UnitPrice, plan_samples
from prmbench.strategies.tree import TreeRecorder
from prmbench.types import Budget, Candidate, Generation, SearchResult

STEP_INDEX_BASE = 1 << 20
"""First sample index of step expansions (pool samples use 0..N-1)."""


@dataclass(frozen=True)
class _Drawn:
    """One sample of a unit of work: the generation, its child (None: an empty continuation,
    dropped unscored) and what the sample plus its score cost in FLOPs."""

    gen: Generation
    child: Candidate | None
    flops: float


class Expander:
    """Metered step expansions and rollouts of one search, sized to the remaining allowance.

    The unit of work is one sample plus its score. Before drawing, the expander asks
    `plan_samples` (prmbench.strategies.sizing) what the rest of the budget affords: an expansion
    draws its k samples in batches that surely fit, and near the end fewer samples or one sample
    with a shortened token limit (a "shorter step"); a rollout is drawn with what the rest pays
    for, or skipped. Once the rest cannot pay for even a one-token sample (within half its cost),
    the expander reports `exhausted()` and draws nothing more. Strategies ask `exhausted()`
    before each expansion and rollout. Spend therefore exceeds a cap by at most one sample plus
    its score; `max_unit_flops` records the largest such unit of the search.
    """

    def __init__(self, ctx: SearchContext, max_depth: int, record_tree: bool = False):
        self.ctx = ctx
        self.tree = TreeRecorder(ctx.task.join_steps) if record_tree else None  # every child and rollout, for trees.jsonl
        self.task = ctx.task
        self.max_depth = max_depth
        self.next_index = STEP_INDEX_BASE
        self.samples = 0
        self.expansions = 0
        self.rollouts = 0
        self.shortened = 0  # samples drawn with a token limit below --max-tokens to fit the allowance
        self.skipped_rollouts = 0
        self.max_unit_flops = 0.0
        self.stopped = False  # the rest of the allowance cannot pay for another sample
        self._prompt: dict[str, int] = {}  # prefix -> its exact prompt tokens (measured)
        self._prompt_base: int | None = None  # prompt tokens beyond a prefix's generated tokens
        self._rm_base: int | None = None  # RM tokens of a candidate beyond its generated tokens
        self._sample_seconds = 0.0

    def exhausted(self) -> bool:
        """Whether the search must stop: the meter reached a cap, or the rest pays for nothing."""
        return self.stopped or self.ctx.exhausted()

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

    def price(self, prefix: str, path_tokens: int) -> UnitPrice | None:
        """Estimated cost of one sample continuing `prefix` (after `path_tokens` generated tokens)
        plus its score, from this search's measurements; None before anything was measured."""
        prompt = self._prompt.get(prefix)
        if prompt is None and self._prompt_base is not None:
            prompt = self._prompt_base + path_tokens
        if prompt is None:
            return None
        p2, r2 = 2.0 * self.ctx.policy_params, 2.0 * self.ctx.rm_params
        rm = (self._rm_base or 0) + path_tokens
        return UnitPrice(fixed_flops=p2 * prompt + r2 * rm, flops_per_token=p2 + r2, seconds=self._sample_seconds)

    def _draw(self, prefix: str, path_tokens: int, k: int, stop: tuple[str, ...],
              child_of: Callable[[Generation], Candidate | None]) -> list[_Drawn]:
        """Up to k samples continuing `prefix`, each turned into a child (`child_of`) and scored,
        in batches the allowance affords (see the class docstring)."""
        out: list[_Drawn] = []
        max_tokens = self.ctx.max_tokens
        while len(out) < k:
            plan = plan_samples(self.ctx.headroom(), k - len(out), max_tokens, self.price(prefix, path_tokens))
            if plan is None:
                self.stopped = True
                break
            m, cap = plan
            seconds0 = self.ctx.spend.seconds
            gens = self.ctx.generate(prefix=prefix, n=m, start=self._indices(m), stop=stop, max_tokens=cap)
            kids = [child_of(g) for g in gens]
            scored, rm_flops = self.ctx.score_with_flops([c for c in kids if c is not None])
            self._learn(prefix, path_tokens, gens, scored, rm_flops, (self.ctx.spend.seconds - seconds0) / m)
            it = iter(zip(scored, rm_flops))
            p2 = 2.0 * self.ctx.policy_params
            for g, kid in zip(gens, kids):
                child, flops = next(it) if kid is not None else (None, 0.0)
                drawn = _Drawn(g, child, p2 * (g.prompt_tokens + g.completion_tokens) + flops)
                self.max_unit_flops = max(self.max_unit_flops, drawn.flops)
                out.append(drawn)
            self.samples += m
            self.shortened += m if cap < max_tokens else 0
        return out

    def _learn(self, prefix: str, path_tokens: int, gens: Sequence[Generation], scored: Sequence[Candidate],
               rm_flops: Sequence[float], seconds: float) -> None:
        """Update the cost estimates from a batch just drawn and scored."""
        self._prompt[prefix] = gens[0].prompt_tokens
        base = gens[0].prompt_tokens - path_tokens
        self._prompt_base = base if self._prompt_base is None else max(self._prompt_base, base)
        r2 = 2.0 * self.ctx.rm_params
        for cand, flops in zip(scored, rm_flops):
            extra = round(flops / r2) - cand.completion_tokens if r2 > 0 else 0
            self._rm_base = extra if self._rm_base is None else max(self._rm_base, extra)
        self._sample_seconds = max(self._sample_seconds, seconds)

    def expand(self, parent: Candidate | None, k: int) -> list[Candidate]:
        """Up to k scored children of `parent` (None: the empty solution), each one step longer.

        Fewer than k come back when the allowance affords fewer samples (none: the expander is
        then exhausted), and when a continuation holds no step: it is charged and dropped,
        except that an empty continuation ending in eos completes the parent (the policy ended
        the solution there, and that complete solution is the child).
        """
        steps = parent.steps if parent is not None else ()
        tokens = parent.completion_tokens if parent is not None else 0

        def child_of(g: Generation) -> Candidate | None:
            new = tuple(self.task.split_steps(g.text))
            if new or (steps and g.finish_reason == "eos"):
                return self._candidate(steps + new, g.finish_reason, tokens + g.completion_tokens)
            return None

        drawn = self._draw(self._prefix(steps), tokens, k, (self.task.step_delimiter,), child_of)
        self.expansions += bool(drawn)
        kids = [d.child for d in drawn if d.child is not None]
        if self.tree is not None:
            for kid in kids:
                self.tree.add(parent, kid)
        return kids

    def rollout(self, parent: Candidate) -> tuple[Candidate, bool] | None:
        """One full continuation of `parent` to the end of a solution, scored by the RM, and
        whether it ended on its own terms (False: cut by a token limit the allowance shortened,
        so its value says nothing about the parent); None when the allowance cannot pay for it."""
        prefix = self._prefix(parent.steps)

        def child_of(g: Generation) -> Candidate:
            cand = self.ctx.to_candidate(g, prefix=prefix)
            return replace(cand, completion_tokens=parent.completion_tokens + g.completion_tokens)

        shortened = self.shortened
        drawn = self._draw(prefix, parent.completion_tokens, 1, (), child_of)
        if not drawn:
            self.skipped_rollouts += 1
            return None
        self.rollouts += 1
        roll = drawn[0].child
        assert roll is not None
        if self.tree is not None:
            self.tree.add(parent, roll, kind="rollout")
        return roll, not (self.shortened > shortened and roll.finish_reason == "length")

    def result(self, result: SearchResult, prune: bool = True) -> SearchResult:
        """`result` with the recorded search tree attached (unchanged when recording is off)."""
        if self.tree is None:
            return result
        return replace(result, tree=self.tree.finish(result, prune))

    def info(self) -> dict[str, Any]:
        """Counts for the record: samples drawn (units of work), expansions, rollouts, samples
        shortened and rollouts skipped to fit the allowance, and the largest unit's FLOPs (one
        sample plus its score: the bound on overshoot)."""
        return {"units": self.samples, "expansions": self.expansions, "rollouts": self.rollouts,
                "shortened": self.shortened, "skipped_rollouts": self.skipped_rollouts,
                "max_unit_flops": self.max_unit_flops}


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
    `aggregation` turns step scores into a solution score (default: the reward model's own);
    `record_tree` (default on) attaches the search tree to the result (`SearchResult.tree`, which
    the runner writes to the cell's trees.jsonl; prmbench.strategies.tree). It changes no search
    decision, so it is not part of `config()` (cells and caches are the same either way).
    """

    stepwise = True
    uses_pool = False

    def __init__(self, expansions: int = 4, max_depth: int = 32, aggregation: str | None = None,
                 record_tree: bool = True):
        if not isinstance(record_tree, bool):
            raise ConfigError(f"{type(self).__name__}: record_tree must be true or false (got {record_tree!r}); "
                              f"set it with --strategy-args record_tree=false")
        self.record_tree = record_tree
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
        """The search's expander (the context applies the aggregation)."""
        return Expander(ctx, self.max_depth, self.record_tree)


def positive_or_none(owner: str, name: str, value: Any) -> int | None:
    """Validate an optional positive integer argument."""
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ConfigError(f"{owner}: {name} must be a positive integer or unset (got {value!r})")
    return value
