"""Majority vote (self-consistency): the most common final answer among N samples wins."""

from __future__ import annotations

from typing import ClassVar

from prmbench.interfaces import SearchContext, Strategy
from prmbench.strategies.pool import draw_pool
from prmbench.strategies.selection import cluster_answers, finished
from prmbench.types import Problem, SearchResult


class MajorityVote(Strategy):
    """Majority vote over final answers, clustered by the task's answer equivalence.

    Draws pool samples 0..N-1 (under an explicit cap: until the cap, see `draw_pool`), clusters the finished candidates' answers with the task's
    `same_answer` (math: math-verify equivalence; code: outputs on public examples) and returns
    the first member of the largest cluster; ties go to the cluster seen first. Uses no reward
    model, so the runner runs it once per task and budget (reward model "none").
    """

    uses_pool: ClassVar[bool] = True
    uses_rm: ClassVar[bool] = False
    version: ClassVar[str] = "1"

    def search(self, problem: Problem, ctx: SearchContext) -> SearchResult:
        """Sample and vote."""
        cands = draw_pool(ctx, score=False)
        clusters = cluster_answers(ctx.task, problem, cands, finished(cands))
        if not clusters:
            return SearchResult(candidates=tuple(cands), chosen=0 if cands else None,
                                info={"votes": [], "note": "no candidate had a final answer"})
        best = max(clusters, key=len)  # max keeps the first of equal-sized clusters
        return SearchResult(candidates=tuple(cands), chosen=best[0],
                            info={"votes": sorted((len(c) for c in clusters), reverse=True)})
