"""Per-cell metrics: accuracy with its uncertainty and the mean measured compute per problem.

`cell_metrics` turns the records of one cell (the lines of its samples file) into the dict that
the runner writes to `metrics.json` and the leaderboard shows.

Uncertainty. `stderr` is the sample standard error of the accuracy, sqrt(p(1-p)/(n-1)). The 95%
confidence interval is the Wilson score interval rather than the textbook Wald interval
p +/- 1.96 * stderr: the Wald interval collapses to zero width at p = 0 or p = 1, can leave [0, 1]
and covers far less than 95% when n is small or p is near 0 or 1, which is exactly where
benchmark cells live (a strong oracle near 100%, a hard task near 0%, a quick run on 30
problems). The Wilson interval inverts the score test, stays inside [0, 1], is never empty and
has close to nominal coverage in those regimes.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Mapping, Sequence

from prmbench.types import Record

CI_LEVEL = 0.95
CI_METHOD = "wilson"
_Z = NormalDist().inv_cdf(0.5 + CI_LEVEL / 2)  # 1.959963984540054

# Spend keys averaged per problem: metrics key -> key of the record's `spend`.
SPEND_MEANS: dict[str, str] = {
    "mean_prompt_tokens": "prompt_tokens",
    "mean_generated_tokens": "generated_tokens",
    "mean_rm_tokens": "rm_tokens",
    "mean_policy_flops": "policy_flops",
    "mean_rm_flops": "rm_flops",
    "mean_flops": "flops",
    "mean_seconds": "seconds",
}

METRIC_KEYS: tuple[str, ...] = ("n", "n_correct", "accuracy", "stderr", "ci_low", "ci_high", "ci_method",
                                *SPEND_MEANS, "mean_candidates", "budget_flops", "mean_spend_flops")


def wilson_interval(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval for `k` successes in `n` trials at confidence `level`.

    Raises ValueError for n <= 0 or k outside [0, n].
    """
    if n <= 0:
        raise ValueError(f"the Wilson interval needs n >= 1 (got n={n})")
    if not 0 <= k <= n:
        raise ValueError(f"successes must lie in [0, n] (got k={k}, n={n})")
    z = _Z if level == CI_LEVEL else NormalDist().inv_cdf(0.5 + level / 2)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, center - half)  # exact bounds at the edges (no rounding noise)
    high = 1.0 if k == n else min(1.0, center + half)
    return low, high


def cell_metrics(records: Sequence[Record | Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy, its standard error and 95% Wilson interval, and mean spend per problem.

    `records` are Records or samples-file rows (read with `Record.from_json`). Returns a dict with
    n, n_correct, accuracy, stderr, ci_low, ci_high, ci_method ("wilson"), mean_prompt_tokens,
    mean_generated_tokens, mean_rm_tokens, mean_policy_flops, mean_rm_flops, mean_flops,
    mean_seconds and mean_candidates, plus budget_flops (the mean FLOPs allowance of records that
    have one, else None) and mean_spend_flops (= mean_flops, the measured spend it is compared
    with). With no records, n and n_correct are 0 and every statistic is None. `stderr` is
    sqrt(p(1-p)/(n-1)), and 0 for n == 1.
    """
    recs = [r if isinstance(r, Record) else Record.from_json(r) for r in records]
    n = len(recs)
    out: dict[str, Any] = {"n": n, "n_correct": 0}
    if n == 0:
        out.update({k: None for k in METRIC_KEYS if k not in out})
        out["ci_method"] = CI_METHOD
        return out
    k = sum(1 for r in recs if r.correct)
    p = k / n
    low, high = wilson_interval(k, n)
    out.update({
        "n_correct": k,
        "accuracy": p,
        "stderr": math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else 0.0,
        "ci_low": low,
        "ci_high": high,
        "ci_method": CI_METHOD,
    })
    for name, key in SPEND_MEANS.items():
        out[name] = sum(float(getattr(r.spend, key)) for r in recs) / n
    out["mean_candidates"] = sum(float(r.n_candidates) for r in recs) / n
    allowances = [r.allowance_flops for r in recs if r.allowance_flops is not None]
    out["budget_flops"] = sum(allowances) / len(allowances) if allowances else None
    out["mean_spend_flops"] = out["mean_flops"]
    return out
