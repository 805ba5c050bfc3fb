"""Drawing the independent full samples of the pool strategies, under any budget unit."""

from __future__ import annotations

from prmbench.interfaces import SearchContext
from prmbench.types import Candidate

MAX_CAPPED_SAMPLES = 4096
"""Safety limit on samples drawn under an explicit cap (a policy that costs nothing never stops)."""


def draw_pool(ctx: SearchContext, score: bool) -> list[Candidate]:
    """Pool samples 0, 1, ... of the problem, scored by the reward model when `score`.

    With a sample-count budget (units n and nominal) this is exactly samples 0..N-1, the pool
    shared with every pool strategy of the run. Under an explicit cap (tokens | flops | seconds)
    samples are drawn one at a time, each scored at once, until the meter reports the cap
    reached (so the last sample and its score may overshoot it), at most MAX_CAPPED_SAMPLES.
    """
    if not ctx.budget.capped:
        cands = ctx.sample_full(ctx.budget.n)
        return ctx.score(cands) if score else cands
    out: list[Candidate] = []
    while len(out) < MAX_CAPPED_SAMPLES and not ctx.exhausted():
        cand = ctx.sample_full(1, start=len(out))
        out.extend(ctx.score(cand) if score else cand)
    return out
