"""Step-level metrics (ProcessBench, PRM800K ratings, PRMBench) and `evaluate_step_task`.

Every function here is a pure function of records (the lines of a step-level cell's samples
file), so each number a step-level cell reports can be recomputed from its records.

ProcessBench (Zheng et al., 2024). A solution's predicted first error is the first step whose
score is *below* the threshold (-1 when none is). On the erroneous solutions (gold label >= 0)
`error_acc` is the share whose predicted index equals the gold one; on the correct solutions
(label -1) `correct_acc` is the share predicted -1; `f1` is their harmonic mean
2 * error_acc * correct_acc / (error_acc + correct_acc) (0 when both are 0), exactly the
benchmark's definition. Confidence intervals are percentile intervals of a stratified bootstrap:
the erroneous and the correct solutions are resampled separately, with replacement, which keeps
both classes in every resample (F1 needs both). The number of hits in a resample of n from a 0/1
sample with k hits is Binomial(n, k/n), so each resample is drawn as two binomials.

The threshold-free `auroc` of first-error detection is step-level: the labelled steps are the
first erroneous step of each erroneous solution (positive) and every step known to be correct
(the steps before the first error, and all steps of a correct solution: negative); the steps
after the first error carry no label and are left out. The detector's score is 1 - step score,
and AUROC is the Mann-Whitney probability that a positive outscores a negative (ties count one
half). `solution_auroc` is the same for whole solutions: erroneous vs correct, scored by
1 - min(step scores).

PRMBench (Song et al., 2025) and PRM800K ratings are defined in `prmscore` and
`rating_metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from prmbench.errors import ConfigError

DEFAULT_THRESHOLD = 0.5
N_BOOT = 2000
CI_LEVEL = 0.95


# -- generic ------------------------------------------------------------------------------------
def harmonic_f1(a: float, b: float) -> float:
    """2ab / (a + b), and 0.0 when a + b == 0 (ProcessBench's F1 of error_acc and correct_acc)."""
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(positive score > negative score) + P(tie) / 2 (the Mann-Whitney U over n_pos * n_neg);
    None when either side is empty."""
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    if pos.size == 0 or neg.size == 0:
        return None
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(allv.size, dtype=float)
    sorted_v = allv[order]
    # average ranks over ties (1-based)
    i = 0
    n = allv.size
    while i < n:
        j = i
        while j + 1 < n and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


def check_threshold(value: Any, where: str) -> float:
    """A threshold given as a task argument: a number in [0, 1]."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(value, bool) or not 0.0 <= t <= 1.0:
        raise ConfigError(f"{where}: threshold must be a number in [0, 1], e.g. --task-args threshold=0.5 (got {value!r})")
    return t


# -- ProcessBench ----------------------------------------------------------------------------------
def first_below(step_scores: Sequence[float], threshold: float) -> int:
    """The index of the first step scored below `threshold`, or -1 when none is."""
    return next((i for i, s in enumerate(step_scores) if s < threshold), -1)


@dataclass(frozen=True)
class _Solutions:
    """ProcessBench records as arrays: for each solution the interval of thresholds at which its
    prediction is right (t in (lo, hi] for erroneous, t <= hi for correct solutions)."""

    err_lo: np.ndarray
    err_hi: np.ndarray
    cor_hi: np.ndarray

    @classmethod
    def of(cls, records: Sequence[Mapping[str, Any]]) -> "_Solutions":
        err_lo, err_hi, cor_hi = [], [], []
        for r in records:
            s, label = list(r["step_scores"]), int(r["label"])
            if label < 0:
                cor_hi.append(min(s) if s else math.inf)  # right iff no scored step is below t
                continue
            if label >= len(s):  # the error step has no score (truncated): never located
                err_lo.append(math.inf)
                err_hi.append(-math.inf)
                continue
            err_lo.append(s[label])  # the error step must be below t ...
            err_hi.append(min(s[:label]) if label else math.inf)  # ... and no earlier step
        return cls(np.array(err_lo, float), np.array(err_hi, float), np.array(cor_hi, float))

    def accuracies(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(error_acc, correct_acc) at each threshold (NaN for a class with no solution)."""
        t = thresholds[:, None]
        e = ((self.err_lo[None, :] < t) & (t <= self.err_hi[None, :])).mean(axis=1) if self.err_lo.size else \
            np.full(thresholds.size, np.nan)
        c = (t <= self.cor_hi[None, :]).mean(axis=1) if self.cor_hi.size else np.full(thresholds.size, np.nan)
        return e, c


def threshold_candidates(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Thresholds at which any prediction can change: 0, 1 and the midpoints between distinct step scores."""
    scores = np.unique(np.array([x for r in records for x in r["step_scores"]], dtype=float))
    mids = (scores[1:] + scores[:-1]) / 2 if scores.size > 1 else np.array([])
    return np.unique(np.concatenate([[0.0, 1.0], mids]))


def best_threshold(records: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(threshold, F1) with the highest ProcessBench F1 on `records`; ties go to the threshold nearest 0.5.

    Raises ValueError when the records lack erroneous or correct solutions (F1 needs both).
    """
    sol = _Solutions.of(records)
    if not sol.err_lo.size or not sol.cor_hi.size:
        raise ValueError("the F1-best threshold needs both erroneous and correct solutions")
    cands = threshold_candidates(records)
    e, c = sol.accuracies(cands)
    f1 = _f1_draws(e, c)
    best = f1.max()
    ties = np.flatnonzero(f1 >= best - 1e-12)
    pick = ties[np.argmin(np.abs(cands[ties] - DEFAULT_THRESHOLD))]
    return float(cands[pick]), float(f1[pick])


def _bootstrap(k: int, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    return rng.binomial(n, k / n, size=draws) / n if n else np.full(draws, np.nan)


def _hits(records: Sequence[Mapping[str, Any]], threshold: float) -> tuple[int, int, int, int]:
    """(erroneous located, erroneous, correct kept, correct) at `threshold`."""
    err = [r for r in records if int(r["label"]) >= 0]
    cor = [r for r in records if int(r["label"]) < 0]
    k_e = sum(first_below(r["step_scores"], threshold) == int(r["label"]) for r in err)
    k_c = sum(first_below(r["step_scores"], threshold) == -1 for r in cor)
    return k_e, len(err), k_c, len(cor)


def _f1_draws(be: np.ndarray, bc: np.ndarray) -> np.ndarray:
    return np.where(be + bc > 0, 2 * be * bc / np.where(be + bc > 0, be + bc, 1), 0.0)


def _ci(draws: np.ndarray) -> list[float]:
    tail = (1 - CI_LEVEL) / 2 * 100
    return [float(x) for x in np.percentile(draws, [tail, 100 - tail])]


def mean_f1_ci(subsets: Sequence[Sequence[Mapping[str, Any]]], threshold: float, n_boot: int = N_BOOT,
               seed: int = 0) -> list[float] | None:
    """95% CI of the mean F1 over subsets (ProcessBench's Avg. F1): each subset's classes resampled
    as in `processbench_metrics`, independently per subset; None when a subset lacks a class."""
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    for records in subsets:
        k_e, n_e, k_c, n_c = _hits(records, threshold)
        if not n_e or not n_c:
            return None
        total += _f1_draws(_bootstrap(k_e, n_e, n_boot, rng), _bootstrap(k_c, n_c, n_boot, rng))
    return _ci(total / len(subsets)) if subsets else None


def processbench_metrics(records: Sequence[Mapping[str, Any]], threshold: float, n_boot: int = N_BOOT,
                         seed: int = 0) -> dict[str, Any]:
    """ProcessBench metrics of records at `threshold` (see the module docstring).

    Records need `label` (gold first-error index, -1 = correct) and `step_scores`; `truncated`
    is counted. Returns n, n_erroneous, n_correct, error_acc, correct_acc, f1 with 95% bootstrap
    CIs (`*_ci`: [low, high]), auroc, solution_auroc, the threshold, n_truncated, and
    oracle_threshold / f1_oracle_threshold (the best threshold chosen on these same records: an
    upper bound, never the headline F1).
    """
    err = [r for r in records if int(r["label"]) >= 0]
    cor = [r for r in records if int(r["label"]) < 0]
    k_e, _, k_c, _ = _hits(records, threshold)
    e = k_e / len(err) if err else None
    c = k_c / len(cor) if cor else None
    out: dict[str, Any] = {"n": len(records), "n_erroneous": len(err), "n_correct": len(cor),
                           "threshold": threshold, "error_acc": e, "correct_acc": c,
                           "f1": harmonic_f1(e, c) if e is not None and c is not None else None}
    rng = np.random.default_rng(seed)
    be, bc = _bootstrap(k_e, len(err), n_boot, rng), _bootstrap(k_c, len(cor), n_boot, rng)
    for name, draws, value in (("error_acc", be, e), ("correct_acc", bc, c), ("f1", _f1_draws(be, bc), out["f1"])):
        out[f"{name}_ci"] = None if value is None else _ci(draws)
    out["ci_method"] = f"stratified bootstrap, {n_boot} resamples, seed {seed}"
    pos = [1 - r["step_scores"][int(r["label"])] for r in err if int(r["label"]) < len(r["step_scores"])]
    neg = [1 - x for r in records for x in (r["step_scores"] if int(r["label"]) < 0 else r["step_scores"][: int(r["label"])])]
    out["auroc"] = auroc(pos, neg)
    out["n_auroc_steps"] = [len(pos), len(neg)]
    out["solution_auroc"] = auroc([1 - min(r["step_scores"]) for r in err if r["step_scores"]],
                                  [1 - min(r["step_scores"]) for r in cor if r["step_scores"]])
    out["n_truncated"] = sum(bool(r.get("truncated")) for r in records)
    if err and cor:
        t_best, f_best = best_threshold(records)
        out["oracle_threshold"], out["f1_oracle_threshold"] = t_best, f_best
    return out


# -- PRM800K ratings -------------------------------------------------------------------------------
def rating_metrics(records: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, Any]:
    """Agreement of step scores with PRM800K human ratings (-1 bad, 0 neutral, +1 good).

    `auroc`: detecting the steps rated -1 against all others (0 and +1), scored by 1 - score;
    `auroc_neg_vs_pos`: -1 against +1 only; `accuracy`: share of steps where "score below the
    threshold" agrees with "rated -1"; `mean_score` per rating. Records whose target step got no
    score (truncated) are counted in `n_truncated` and left out of every statistic.
    """
    scored = [r for r in records if r.get("score") is not None]
    bad = [1 - float(r["score"]) for r in scored if int(r["rating"]) == -1]
    rest = [1 - float(r["score"]) for r in scored if int(r["rating"]) != -1]
    good = [1 - float(r["score"]) for r in scored if int(r["rating"]) == 1]
    hits = sum((float(r["score"]) < threshold) == (int(r["rating"]) == -1) for r in scored)
    out: dict[str, Any] = {"n": len(records), "n_scored": len(scored), "threshold": threshold,
                           "auroc": auroc(bad, rest), "auroc_neg_vs_pos": auroc(bad, good),
                           "accuracy": hits / len(scored) if scored else None}
    for rating in (-1, 0, 1):
        vals = [float(r["score"]) for r in scored if int(r["rating"]) == rating]
        out[f"n_rating_{rating}"] = len(vals)
        out[f"mean_score_rating_{rating}"] = sum(vals) / len(vals) if vals else None
    out["n_truncated"] = sum(bool(r.get("truncated")) for r in records)
    return out


# -- PRMBench --------------------------------------------------------------------------------------
def step_confusion(error_steps: Iterable[int], step_scores: Sequence[float], threshold: float) -> dict[str, int]:
    """PRMBench's per-solution confusion counts (its `eval_on_hallucination_step`).

    A step is predicted positive (valid) when its score is *above* the threshold. Positive class =
    correct steps: TP = correct step predicted valid, FN = correct step predicted invalid,
    FP = erroneous step predicted valid, TN = erroneous step predicted invalid. `error_steps`
    are 1-based, as in the data; only scored steps count.
    """
    errors = {int(i) - 1 for i in error_steps}
    tp = fp = tn = fn = 0
    for i, s in enumerate(step_scores):
        valid = s > threshold
        if i in errors:
            fp, tn = fp + valid, tn + (not valid)
        else:
            tp, fn = tp + valid, fn + (not valid)
    return {"TP": tp, "FP": fp, "TN": tn, "FN": fn}


def prmscore(confusion: Mapping[str, int]) -> dict[str, float | None]:
    """F1 of the positive (correct-step) class, F1 of the negative (erroneous-step) class and
    PRMScore = 0.5 * F1 + 0.5 * F1_neg (PRMBench's definition; None where a class is absent)."""
    tp, fp, tn, fn = (int(confusion[k]) for k in ("TP", "FP", "TN", "FN"))

    def f1(hit: int, wrong_pred: int, missed: int) -> float | None:
        if hit + wrong_pred == 0 or hit + missed == 0:
            return None if hit + missed == 0 else 0.0
        p, r = hit / (hit + wrong_pred), hit / (hit + missed)
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    pos, neg = f1(tp, fp, fn), f1(tn, fn, fp)
    score = None if pos is None or neg is None else 0.5 * pos + 0.5 * neg
    return {"f1": pos, "negative_f1": neg, "prmscore": score}


# -- the API for other stages (training, reports) ------------------------------------------------
def evaluate_step_task(task_name: str, rm: Any, *, task_args: dict[str, Any] | None = None,
                       limit: int | None = None) -> dict[str, Any]:
    """Score a step-level task with a loaded reward model and return the task's metrics.

    No run folder, no cache: the task (a registry name such as `processbench_math`, built with
    `task_args`) loads its labelled solutions (the first `limit` of each subset), `rm` (a
    RewardModel as the registry builds it; a PRM) scores them through the same batched code the
    runner uses, and the metrics dict is what the runner writes to the cell's metrics.json
    (processbench_*: f1, error_acc, correct_acc, auroc, ...; prm800k_test: auroc, accuracy, ...;
    prmbench_prm800k: prmscore and per-class results).
    """
    from prmbench.plugins import build_registry
    from prmbench.step_runner import check_step_rm, score_step_items
    from prmbench.step_task import require_step_task

    task = require_step_task(build_registry().build("task", task_name, dict(task_args or {})), task_name)
    check_step_rm(rm, getattr(rm, "name", type(rm).__name__), task_name)
    items = task.select(task.load_items(), limit)
    _, metrics = task.evaluate(score_step_items(task, rm, items))
    return metrics
