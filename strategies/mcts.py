"""Monte Carlo tree search over partial solutions, guided by a process reward model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from prmbench.context import SearchContext
from prmbench.errors import ConfigError
from prmbench.strategies.selection import argmax_score, cluster_answers, finished
from prmbench.strategies.stepwise import Expander, StepwiseStrategy, is_live, unfinished
from prmbench.types import Candidate, Problem, SearchResult

LEAF_EVALS = ("prm", "rollout")
FINAL_RULES = ("best", "visits", "vote")
MAX_SIMULATIONS = 100_000
"""Safety limit on simulations of a capped search (the tree normally dies or the budget ends first)."""


@dataclass(eq=False)
class _Node:
    """A tree node: a partial (or finished) solution with its visit statistics."""

    cand: Candidate | None
    parent: "_Node | None" = None
    children: list["_Node"] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    expanded: bool = False
    dead: bool = False  # nothing left to explore below (finished, truncated, or all children dead)

    @property
    def q(self) -> float:
        """Mean backed-up value."""
        return self.value_sum / self.visits if self.visits else 0.0


def leaf_value(cand: Candidate) -> float:
    """The PRM value of a child: its aggregated score; 0 for a truncated one (it can never answer)."""
    return 0.0 if cand.finish_reason == "length" else float(cand.score or 0.0)


class MCTS(StepwiseStrategy):
    """UCT search over partial solutions.

    Each simulation walks from the root (the empty solution) to a leaf, at every node taking the
    child with the highest Q + c * sqrt(ln N_parent / N_child) (Q: mean backed-up value; ties to
    the earliest child; dead subtrees are skipped), then expands the leaf with k sampled next
    steps (`expansions`), which the reward model scores. Each child starts with one visit whose
    value is its aggregated score (0 for a truncated step). The leaf's simulation value is, with
    `leaf_eval="prm"`, the mean of its children's values; with `leaf_eval="rollout"`, the RM
    score of one full continuation of its best live child (the rollout is a complete candidate,
    and it is metered like everything else). The value is backed up as a running mean to the
    root. Finished and truncated children are terminal.

    Simulations run until the meter reports the budget spent (checked before every expansion
    and every rollout; the unit in flight finishes), or the whole tree is explored; in unit
    `nominal` the search runs N simulations. The answer, by `final`:

    - "best": the complete candidate with the highest aggregated score;
    - "visits": follow the most-visited child from the root (ties to the earliest) to a leaf;
      the best complete tree node below the deepest node of that path that has one (rollouts
      are not tree nodes; with none in the tree, as "best");
    - "vote": majority vote over the complete candidates' answers (task equivalence), the
      largest cluster's best-scored member.

    Every rule falls back to the best unfinished (truncated) candidate when nothing completed.
    """

    version: ClassVar[str] = "1"

    def __init__(self, c: float = 1.0, expansions: int = 4, max_depth: int = 32, leaf_eval: str = "prm",
                 final: str = "best", aggregation: str | None = None):
        super().__init__(expansions, max_depth, aggregation)
        if not isinstance(c, (int, float)) or c < 0:
            raise ConfigError(f"mcts: c (the exploration constant) must be a number >= 0 (got {c!r})")
        if leaf_eval not in LEAF_EVALS:
            raise ConfigError(f"mcts: leaf_eval must be one of {', '.join(LEAF_EVALS)} (got {leaf_eval!r})")
        if final not in FINAL_RULES:
            raise ConfigError(f"mcts: final must be one of {', '.join(FINAL_RULES)} (got {final!r})")
        self.c = float(c)
        self.leaf_eval = leaf_eval
        self.final = final

    def config(self) -> dict[str, Any]:
        """Exploration constant, leaf evaluation, final rule, expansions, depth limit, aggregation."""
        return {"c": self.c, "leaf_eval": self.leaf_eval, "final": self.final, **super().config()}

    # -- the search ----------------------------------------------------------------------------
    def _select(self, node: _Node) -> _Node:
        while node.expanded:
            options = [ch for ch in node.children if not ch.dead]
            log_n = math.log(max(node.visits, 1))
            node = max(options, key=lambda ch: ch.q + self.c * math.sqrt(log_n / ch.visits))
        return node

    def _expand(self, exp: Expander, ctx: SearchContext, leaf: _Node, finals: list[Candidate]) -> float | None:
        kids = exp.expand(leaf.cand, self.expansions)
        leaf.expanded = True
        for cand in kids:
            child = _Node(cand, parent=leaf, visits=1, value_sum=leaf_value(cand), dead=not is_live(cand))
            leaf.children.append(child)
            if child.dead:
                finals.append(cand)
        if not kids:
            return 0.0
        if self.leaf_eval == "rollout":
            live = [ch for ch in leaf.children if not ch.dead]
            if live and not ctx.exhausted():
                best = min(range(len(live)), key=lambda i: (-live[i].q, i))
                roll = exp.rollout(live[best].cand)  # type: ignore[arg-type]
                finals.append(roll)
                return leaf_value(roll)
        return sum(leaf_value(k) for k in kids) / len(kids)

    @staticmethod
    def _backup(node: _Node | None, value: float) -> None:
        while node is not None:
            node.visits += 1
            node.value_sum += value
            if node.expanded and all(ch.dead for ch in node.children):
                node.dead = True
            node = node.parent

    def search(self, problem: Problem, ctx: SearchContext) -> SearchResult:
        """Run simulations until the budget is spent, then pick by the final rule."""
        exp = self.start(ctx)
        root = _Node(None)
        finals: list[Candidate] = []
        limit = ctx.budget.n if ctx.budget.unit == "nominal" else MAX_SIMULATIONS
        sims = 0
        stopped = False
        while not root.dead and sims < limit:
            if ctx.exhausted():
                stopped = True
                break
            leaf = self._select(root)
            self._backup(leaf, self._expand(exp, ctx, leaf, finals))
            sims += 1
        cands, chosen = self._choose(ctx, problem, root, finals)
        return SearchResult(candidates=tuple(cands), chosen=chosen,
                            info={"simulations": sims, "stopped_by_budget": stopped, "tree_exhausted": root.dead,
                                  "final": self.final, **exp.info(), "aggregation": ctx.aggregation})

    # -- the final answer ----------------------------------------------------------------------
    def _choose(self, ctx: SearchContext, problem: Problem, root: _Node,
                finals: list[Candidate]) -> tuple[list[Candidate], int | None]:
        cands = list(finals)
        complete = [i for i in finished(cands) if cands[i].finish_reason != "length"]
        if not complete:
            partial = max(_leaves(root), key=lambda n: (n.q, -n.visits), default=None)
            if partial is not None and partial.cand is not None and is_live(partial.cand):
                cands.append(unfinished(partial.cand))
            return cands, argmax_score(cands, list(range(len(cands))))
        if self.final == "vote":
            clusters = cluster_answers(ctx.task, problem, cands, complete)
            if clusters:
                return cands, argmax_score(cands, max(clusters, key=len))
        if self.final == "visits":
            below = _most_visited_subtree(root)
            ids = {id(c) for c in below}
            scoped = [i for i in complete if id(cands[i]) in ids]
            if scoped:
                return cands, argmax_score(cands, scoped)
        return cands, argmax_score(cands, complete)


def _leaves(root: _Node) -> list[_Node]:
    out, stack = [], [root]
    while stack:
        n = stack.pop()
        if n.children:
            stack.extend(n.children)
        elif n.cand is not None:
            out.append(n)
    return out


def _subtree_finals(node: _Node) -> list[Candidate]:
    return [n.cand for n in _leaves(node) if n.cand is not None and n.dead]


def _most_visited_subtree(root: _Node) -> list[Candidate]:
    """Finished candidates below the deepest node of the most-visited path that has any."""
    path, node = [root], root
    while node.children:
        node = max(node.children, key=lambda ch: ch.visits)  # max keeps the earliest of equals
        path.append(node)
    for n in reversed(path):
        found = _subtree_finals(n)
        if found:
            return found
    return []
