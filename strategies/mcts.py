"""Monte Carlo tree search over partial solutions, guided by a process reward model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from prmbench.errors import ConfigError
from prmbench.strategies.selection import argmax_score, cluster_answers, finished
from prmbench.strategies.stepwise import Expander, StepwiseStrategy, is_live, unfinished
from prmbench.interfaces import SearchContext
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
    rollouts: int = 0  # rollouts run from this node (each one visit of it)
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
    value is its aggregated score (0 for a truncated step), and these initial visits are backed
    up: the leaf and every ancestor gain k visits and the children's values, so a node's N is
    its own visit plus its children's N (plus its rollouts). With `leaf_eval="rollout"` the best
    live child is then continued to a full solution (one sample, metered like everything else;
    the rollout is a complete candidate), and the rollout's RM score is backed up as one more
    visit from that child (the child, the leaf and every ancestor). Finished and truncated
    children are terminal.

    Simulations run until the budget is spent, or the whole tree is explored; in unit `nominal`
    the search runs N simulations. Every expansion draws only the samples the rest of the
    allowance affords (the last one may be shrunk to fewer samples or a shorter step); a rollout
    runs with the tokens the rest pays for (a rollout cut short by that limit is kept as a
    candidate but its value is not backed up) or is skipped when the rest pays for nothing.
    Spend therefore exceeds the allowance by at most one sample plus its score. The answer, by
    `final`:

    - "best": the complete candidate with the highest aggregated score;
    - "visits": follow the most-visited child from the root (ties to the earliest) to a leaf;
      the best complete tree node below the deepest node of that path that has one (rollouts
      are not tree nodes; with none in the tree, as "best");
    - "vote": majority vote over the complete candidates' answers (task equivalence), the
      largest cluster's best-scored member.

    Every rule falls back to the best unfinished (truncated) candidate when nothing completed.
    """

    version: ClassVar[str] = "2"

    def __init__(self, c: float = 1.0, expansions: int = 4, max_depth: int = 32, leaf_eval: str = "prm",
                 final: str = "best", aggregation: str | None = None, record_tree: bool = True):
        super().__init__(expansions, max_depth, aggregation, record_tree)
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

    def _expand(self, exp: Expander, leaf: _Node, finals: list[Candidate]) -> None:
        """One simulation's expansion of `leaf` (and rollout), with its backups."""
        kids = exp.expand(leaf.cand, self.expansions)
        if not kids and exp.exhausted():
            return  # the allowance paid for nothing: the leaf stays unexpanded
        leaf.expanded = True
        for cand in kids:
            child = _Node(cand, parent=leaf, visits=1, value_sum=leaf_value(cand), dead=not is_live(cand))
            leaf.children.append(child)
            if child.dead:
                finals.append(cand)
        self._backup(leaf, len(kids), sum(leaf_value(c) for c in kids))  # the children's initial visits
        if self.leaf_eval != "rollout" or exp.exhausted():
            return
        live = [ch for ch in leaf.children if not ch.dead]
        if not live:
            return
        best = live[min(range(len(live)), key=lambda i: (-live[i].q, i))]
        done = exp.rollout(best.cand)  # type: ignore[arg-type]
        if done is None:
            return
        roll, valued = done
        finals.append(roll)
        if valued:
            best.rollouts += 1
            self._backup(best, 1, leaf_value(roll))

    @staticmethod
    def _backup(node: _Node | None, visits: int, value: float) -> None:
        """Add `visits` visits of total value `value` to `node` and its ancestors, marking nodes
        whose children are all dead as dead."""
        while node is not None:
            node.visits += visits
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
            if exp.exhausted():
                stopped = True
                break
            self._expand(exp, self._select(root), finals)
            sims += 1
        cands, chosen = self._choose(ctx, problem, root, finals)
        if exp.tree is not None:
            stack = [root]
            while stack:
                node = stack.pop()
                exp.tree.set_stats(node.cand, node.visits, node.q)
                stack.extend(node.children)
        return exp.result(SearchResult(candidates=tuple(cands), chosen=chosen,
                                       info={"simulations": sims, "stopped_by_budget": stopped or exp.exhausted(),
                                             "tree_exhausted": root.dead, "final": self.final,
                                             "root_visits": root.visits, **exp.info(), "aggregation": ctx.aggregation}),
                          prune=False)

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
