"""Step-level beam search guided by a process reward model."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

from prmbench.strategies.selection import argmax_score, finished
from prmbench.strategies.stepwise import Expander, StepwiseStrategy, is_live, positive_or_none, unfinished
from prmbench.interfaces import SearchContext
from prmbench.types import Candidate, Problem, SearchResult

Keep = Callable[[Sequence[Sequence[Candidate]], bool], tuple[list[Candidate], list[Candidate]]]
"""(children grouped by parent, whether the parent was the empty solution) -> (live, set aside)."""


def search_rounds(ctx: SearchContext, exp: Expander, roots: int, first_k: int, k: int, keep: Keep) -> SearchResult:
    """Expand live partial solutions round by round until none is left or the budget is spent.

    Round 0 expands the empty solution `roots` times with `first_k` samples each (fresh seeds
    every time); later rounds expand every live solution with `k`. The expander is asked before
    every expansion and sizes each one to what the allowance affords (near the end: fewer
    samples, or a shorter last step), so spend exceeds the allowance by at most one sample plus
    its score; when it says stop, the
    round ends there and what is still live becomes unfinished (truncated) candidates. The final
    choice is the highest aggregated score among finished candidates (complete solutions; the
    truncated only when nothing finished). `info["rounds"]` lists per round the number of
    children and the best child score.
    """
    live: list[Candidate | None] = [None] * roots
    done: list[Candidate] = []
    rounds: list[dict[str, Any]] = []
    stopped = False
    while live:
        groups: list[list[Candidate]] = []
        leftover: list[Candidate] = []
        for i, parent in enumerate(live):
            if exp.exhausted():
                stopped, leftover = True, [p for p in live[i:] if p is not None]
                break
            groups.append(exp.expand(parent, first_k if parent is None else k))
        scores = [c.score for g in groups for c in g if c.score is not None]
        rounds.append({"children": sum(map(len, groups)), "best": max(scores, default=None)})
        next_live, aside = keep(groups, live[0] is None)
        done.extend(aside)
        live = list(next_live)
        if stopped:
            done.extend(unfinished(c) for c in [*live, *leftover])
            break
    chosen = argmax_score(done, finished(done))
    return exp.result(SearchResult(candidates=tuple(done), chosen=chosen,
                                   info={"stopped_by_budget": stopped, "rounds": rounds, **exp.info(),
                                         "aggregation": ctx.aggregation}))


def top_beams(width: int) -> Keep:
    """Beam search's rule: finished and truncated children aside, the best `width` live ones kept."""

    def keep(groups: Sequence[Sequence[Candidate]], root: bool) -> tuple[list[Candidate], list[Candidate]]:
        children = [c for g in groups for c in g]
        live = [c for c in children if is_live(c)]
        order = sorted(range(len(live)), key=lambda i: (-(live[i].score or 0.0), i))
        return [live[i] for i in order[:width]], [c for c in children if not is_live(c)]

    return keep


class BeamSearch(StepwiseStrategy):
    """Step-level beam search with B beams and M expansions per beam.

    Round 0 samples B x M first steps (B expansions of the empty solution); every later round
    expands each live beam with M sampled next steps (stopping at the task's step delimiter). The reward model scores each new prefix;
    children that ended the solution (eos) are kept aside as complete, children cut by the
    length limit (or reaching `max_depth`) aside as truncated; the best B live children (by
    aggregated score, ties to the earliest) are the next beams. The search ends when no beam is
    live or the budget is spent: checked before every beam expansion, and each expansion draws
    only the samples the rest of the allowance affords (the last one may be shrunk to fewer
    samples or a shorter step), so spend exceeds the allowance by at most one sample plus its
    score. The answer is the complete candidate with the highest aggregated score (a truncated
    one only when none completed).

    `beam_width` (B) defaults to N // M for budget N in unit nominal (the literature's "N beams
    of width M") and to M otherwise, where the meter decides how far the search gets.
    """

    version: ClassVar[str] = "2"

    def __init__(self, beam_width: int | None = None, expansions: int = 4, max_depth: int = 32,
                 aggregation: str | None = None, record_tree: bool = True):
        super().__init__(expansions, max_depth, aggregation, record_tree)
        self.beam_width = positive_or_none("beam_search", "beam_width", beam_width)

    def config(self) -> dict[str, Any]:
        """Beam width, expansions, depth limit and aggregation."""
        return {"beam_width": self.beam_width, **super().config()}

    def search(self, problem: Problem, ctx: SearchContext) -> SearchResult:
        """Run the beam search (see the class docstring)."""
        exp = self.start(ctx)
        width = self.width(self.beam_width, ctx.budget)
        return search_rounds(ctx, exp, width, self.expansions, self.expansions, top_beams(width))
