"""Best-of-N: sample N independent solutions, return the one the reward model scores highest."""

from __future__ import annotations

from typing import Any, ClassVar

from prmbench.aggregate import check_aggregation
from prmbench.interfaces import SearchContext, Strategy
from prmbench.strategies.pool import draw_pool
from prmbench.strategies.selection import argmax_score, finished
from prmbench.types import Problem, SearchResult


class BestOfN(Strategy):
    """Best-of-N selection.

    Draws pool samples 0..N-1 (shared with every other pool strategy of the run; under an
    explicit tokens/flops/seconds cap, samples until the cap, see `draw_pool`), scores each
    with the reward model, aggregates step scores with `aggregation` (last | min | prod | mean;
    default: the reward model's own) and returns the highest-scoring candidate among those that
    finished on their own (truncated ones only when all were truncated). Ties go to the
    earliest sample, so results are deterministic.
    """

    uses_pool: ClassVar[bool] = True
    version: ClassVar[str] = "1"

    def __init__(self, aggregation: str | None = None):
        self.aggregation = check_aggregation(aggregation) if aggregation else None

    def config(self) -> dict[str, Any]:
        """The aggregation rule."""
        return {"aggregation": self.aggregation}

    def search(self, problem: Problem, ctx: SearchContext) -> SearchResult:
        """Sample, score, pick the best."""
        cands = draw_pool(ctx, score=True)
        chosen = argmax_score(cands, finished(cands))
        return SearchResult(candidates=tuple(cands), chosen=chosen, info={"aggregation": ctx.aggregation})
