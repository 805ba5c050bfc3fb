"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

From a pool of n >= k samples of which c are correct, the probability that k samples drawn
without replacement hold at least one correct one is 1 - C(n-c, k) / C(n, k); averaged over
problems it estimates pass@k with less variance than drawing exactly k samples.
"""

from __future__ import annotations

from math import comb
from typing import Any, Iterable, Mapping

from prmbench.errors import DataError


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one problem with c correct samples out of n (n >= k >= 1)."""
    if not (0 <= c <= n) or k < 1 or n < k:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pool_counts(record: Mapping[str, Any]) -> tuple[int, int]:
    """(n, c) of one oracle best-of-N record: its candidates and how many the oracle scored correct.

    The oracle reward model scores a candidate 1.0 exactly when the task's grader says correct
    (prmbench.reward_models.oracle), so the record's `candidate_scores` are the pool's verdicts.
    """
    scores = (record.get("info") or {}).get("candidate_scores")
    if scores is None:
        raise DataError(f"record of problem {record.get('problem_id')!r} lacks info.candidate_scores; "
                        "re-run the oracle cell with this prmbench")
    return len(scores), sum(1 for s in scores if s is not None and float(s) >= 1.0)


def mean_pass_at_k(records: Iterable[Mapping[str, Any]], k: int) -> tuple[float, int]:
    """Mean unbiased pass@k over oracle records (pools of at least k samples) and the problem count."""
    values = []
    for rec in records:
        n, c = pool_counts(rec)
        if n < k:
            raise DataError(f"problem {rec.get('problem_id')!r}: a pool of {n} samples cannot estimate pass@{k}; "
                            f"run the oracle cell with --budget {k} or more")
        values.append(pass_at_k(n, c, k))
    if not values:
        raise DataError("no oracle records to estimate pass@k from")
    return sum(values) / len(values), len(values)
