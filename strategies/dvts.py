"""Diverse verifier tree search (DVTS): independent greedy subtrees guided by a PRM."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from prmbench.strategies.beam_search import search_rounds
from prmbench.strategies.stepwise import StepwiseStrategy, is_live, positive_or_none
from prmbench.interfaces import SearchContext
from prmbench.types import Candidate, Problem, SearchResult


def greedy_per_subtree(groups: Sequence[Sequence[Candidate]], root: bool) -> tuple[list[Candidate], list[Candidate]]:
    """DVTS's rule: the root's live children each start a subtree; later, each subtree keeps its best child.

    Within a subtree the best-scored child (ties to the earliest) is followed: if it is live
    the subtree continues from it, otherwise (complete or truncated) the subtree ends with it.
    Every other complete or truncated child is kept aside as a candidate too.
    """
    live: list[Candidate] = []
    aside: list[Candidate] = []
    for group in groups:
        if root:
            live.extend(c for c in group if is_live(c))
            aside.extend(c for c in group if not is_live(c))
            continue
        if not group:
            continue
        best = min(range(len(group)), key=lambda i: (-(group[i].score or 0.0), i))
        if is_live(group[best]):
            live.append(group[best])
        aside.extend(c for c in group if not is_live(c))
    return live, aside


class DVTS(StepwiseStrategy):
    """Diverse verifier tree search with S independent subtrees of M expansions per step.

    Round 0 samples S first steps from the empty solution, one per subtree and one expansion
    each (subtrees are
    independent from there on: no competition between them, which keeps the final candidates
    diverse). Every later round expands each live subtree's current path with M sampled next
    steps, scores them with the reward model and follows the best one greedily (see
    `greedy_per_subtree`). A subtree ends when its best child completes the solution or is
    truncated (length limit or `max_depth`); the search ends when no subtree is live or the
    budget is spent (checked before every expansion; the last expansion is shrunk to what the
    allowance affords: fewer samples or a shorter step, so spend exceeds the allowance by at most
    one sample plus its score). The answer is the complete candidate with the highest aggregated
    score (a truncated one only when none completed).

    `subtrees` (S) defaults to N // M for budget N in unit nominal and to M otherwise, where the
    meter decides how far the search gets.
    """

    version: ClassVar[str] = "2"

    def __init__(self, subtrees: int | None = None, expansions: int = 4, max_depth: int = 32,
                 aggregation: str | None = None, record_tree: bool = True):
        super().__init__(expansions, max_depth, aggregation, record_tree)
        self.subtrees = positive_or_none("dvts", "subtrees", subtrees)

    def config(self) -> dict[str, Any]:
        """Subtrees, expansions, depth limit and aggregation."""
        return {"subtrees": self.subtrees, **super().config()}

    def search(self, problem: Problem, ctx: SearchContext) -> SearchResult:
        """Run DVTS (see the class docstring)."""
        exp = self.start(ctx)
        return search_rounds(ctx, exp, self.width(self.subtrees, ctx.budget), 1, self.expansions, greedy_per_subtree)
