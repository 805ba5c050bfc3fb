"""Turning per-step reward scores into one solution score."""

from __future__ import annotations

import math
from typing import Callable, Sequence

from prmbench.errors import ConfigError, did_you_mean


def _prod(scores: Sequence[float]) -> float:
    return math.prod(scores)


AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "last": lambda s: s[-1],
    "min": min,
    "prod": _prod,
    "mean": lambda s: sum(s) / len(s),
}


def check_aggregation(name: str) -> str:
    """Validate an aggregation name, raising a did-you-mean error for unknown ones."""
    if name not in AGGREGATIONS:
        raise ConfigError(
            f"unknown aggregation {name!r}.{did_you_mean(name, AGGREGATIONS)} "
            f"Choose one of: {', '.join(AGGREGATIONS)}."
        )
    return name


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """Solution score from step scores with last | min | prod | mean; 0.0 for no steps."""
    if not step_scores:
        return 0.0
    return float(AGGREGATIONS[check_aggregation(how)](step_scores))
