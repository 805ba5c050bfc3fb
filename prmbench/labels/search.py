"""Which step prefixes a Monte Carlo labeller evaluates: every one (linear) or a binary search.

A planner looks at the values already estimated for a solution's prefixes (`known`: step index
-> share of correct rollouts) and returns the step indices to estimate next, or [] when it is
done; `first_error` then reads the answer off `known`. Both are pure functions of `known`, so an
interrupted labelling resumes by replaying them over the cached rollouts.
"""

from __future__ import annotations

from typing import Callable, Mapping

SEARCHES = ("linear", "binary")

Planner = Callable[[int, Mapping[int, float]], list[int]]


def plan_linear(n_steps: int, known: Mapping[int, float]) -> list[int]:
    """Every prefix, in one round."""
    return [i for i in range(n_steps) if i not in known]


def plan_binary(n_steps: int, known: Mapping[int, float]) -> list[int]:
    """The next prefix of a binary search for the first step whose value is 0 (OmegaPRM).

    It assumes values do not recover once they reach 0 (a wrong step stays wrong), so it needs
    about log2(n_steps + 1) prefix evaluations instead of n_steps.
    """
    lo, hi = _bisect(n_steps, known)
    return [] if lo >= hi else [(lo + hi) // 2]


def _bisect(n_steps: int, known: Mapping[int, float]) -> tuple[int, int]:
    lo, hi = 0, n_steps  # the first error lies in [lo, hi); hi == n_steps means none
    while lo < hi:
        mid = (lo + hi) // 2
        if mid not in known:
            break
        if known[mid] > 0:
            lo = mid + 1
        else:
            hi = mid
    return lo, hi


def first_error(search: str, n_steps: int, known: Mapping[int, float]) -> int | None:
    """The first step with value 0 (linear: the first evaluated; binary: where the search ended)."""
    if search == "binary":
        lo, _ = _bisect(n_steps, known)
        return lo if lo < n_steps else None
    return next((i for i in range(n_steps) if known.get(i, 1.0) == 0), None)


def hard_labels(search: str, n_steps: int, known: Mapping[int, float]) -> list[float | None]:
    """Per-step hard labels: linear: 1.0 when the value is > 0, else 0.0; binary: 1.0 before the
    first error (inferred), 0.0 at it, None after it (unknown)."""
    if search == "binary":
        err = first_error(search, n_steps, known)
        if err is None:
            return [1.0] * n_steps
        return [1.0] * err + [0.0] + [None] * (n_steps - err - 1)
    return [None if i not in known else (1.0 if known[i] > 0 else 0.0) for i in range(n_steps)]


PLANNERS: dict[str, Planner] = {"linear": plan_linear, "binary": plan_binary}
