"""Weighted majority vote: answer clusters weighted by the reward model's scores."""

from __future__ import annotations

from typing import ClassVar

from prmbench.strategies.best_of_n import BestOfN
from prmbench.strategies.pool import draw_pool
from prmbench.strategies.selection import argmax_score, cluster_answers, finished
from prmbench.interfaces import SearchContext
from prmbench.types import Problem, SearchResult


class WeightedMajority(BestOfN):
    """Weighted majority vote over N samples.

    Draws pool samples 0..N-1 (under an explicit cap: until the cap, see `draw_pool`), scores
    each with the reward model and aggregates its step scores with `aggregation` (default: the
    reward model's own). The finished candidates' answers are clustered by the task's answer
    equivalence (as in majority vote); each cluster's weight is the sum of its members'
    aggregated scores. The heaviest cluster wins (ties: the cluster seen first) and its
    highest-scoring member is returned (ties: the earliest sample). With no answer at all, the
    best-scoring candidate is returned. Takes best-of-N's arguments.
    """

    version: ClassVar[str] = "1"

    def search(self, problem: Problem, ctx: SearchContext) -> SearchResult:
        """Sample, score, cluster, pick the heaviest cluster's best member."""
        cands = draw_pool(ctx, score=True)
        eligible = finished(cands)
        clusters = cluster_answers(ctx.task, problem, cands, eligible)
        if not clusters:
            return SearchResult(candidates=tuple(cands), chosen=argmax_score(cands, eligible),
                                info={"weights": [], "note": "no candidate had a final answer"})
        weights = [sum(cands[i].score or 0.0 for i in cl) for cl in clusters]
        best = max(range(len(clusters)), key=lambda j: (weights[j], -j))
        return SearchResult(candidates=tuple(cands), chosen=argmax_score(cands, clusters[best]),
                            info={"aggregation": ctx.aggregation,
                                  "weights": sorted((round(w, 6) for w in weights), reverse=True)})
