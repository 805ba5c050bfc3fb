"""Combining several annotators' labels of one solution (ASLAF-style consensus filtering).

With rule "all", a solution is kept only when every annotator puts its first error at the same
step (or all find none): "only those steps where all LLMs agree on the error location are
retained". With rule "none" every solution is kept and the agreement is only recorded.

The combined labels are the hard labels every annotator agrees on (None where they differ or
one has none); the combined `mc_values` are the share of correct rollouts pooled over all
annotators, so they stay recomputable from the row's stored rollouts. When the annotators
disagree (kept only under rule "none") `first_error` is the first step all of them label bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from prmbench.labels.montecarlo import Annotation, pooled_values

RULES = ("none", "all")


@dataclass(frozen=True)
class Consensus:
    """The combined labels of one solution and whether the rule keeps it."""

    mc_values: tuple[float | None, ...]
    labels: tuple[float | None, ...]
    first_error: int | None
    agree: bool
    keep: bool


def combine(annotations: Mapping[str, Annotation], rule: str) -> Consensus:
    """Combine the annotators' labels of one solution under `rule` (see module docstring)."""
    anns = list(annotations.values())
    errors = {a.first_error for a in anns}
    agree = len(errors) == 1
    labels = []
    for i in range(len(anns[0].labels)):
        values = {a.labels[i] for a in anns}
        labels.append(values.pop() if len(values) == 1 else None)
    return Consensus(
        mc_values=tuple(pooled_values(anns)),
        labels=tuple(labels),
        first_error=anns[0].first_error if agree else next((i for i, v in enumerate(labels) if v == 0.0), None),
        agree=agree,
        keep=agree or rule == "none",
    )
