"""Paired comparison of step-level cells (TASK--RM) of two runs, for CI.

Cells are matched by (task, rm) and, inside a cell, solutions by problem_id (only those in both
runs count). Per matched cell:

- the cell statistic on the shared solutions in both runs and its change `delta` (new - base):
  ProcessBench: F1 (harmonic mean of error_acc and correct_acc); PRM800K test: accuracy of
  "score below the threshold" as a detector of rated -1; PRMBench: PRMScore;
- a paired bootstrap CI of `delta` at level 1 - alpha: solutions are resampled with replacement,
  the same draw for both runs (ProcessBench: within the erroneous and within the correct
  solutions, so both classes stay in every resample); `numpy.random.default_rng(seed)`;
- where a solution has a right/wrong outcome (ProcessBench: predicted error location == gold;
  PRM800K: the detector's verdict agrees with the rating), McNemar's exact test on the
  discordant solutions, b = right in base only, c = right in new only (prmbench.compare).

A cell regresses when `delta` < -max_drop and the change is significant: McNemar's p < alpha
where solutions have outcomes (as `prmbench compare` judges search cells), else (PRMBench) the
bootstrap CI lies entirely below 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tabulate import tabulate

from prmbench.compare import mcnemar_exact_p
from prmbench.comparability import check_settings
from prmbench.errors import ConfigError, DataError
from prmbench.results import CellResult, RunResult
from prmbench.step_eval import prmscore

N_BOOT = 2000


@dataclass(frozen=True)
class StepCellComparison:
    """One matched step-level cell: the statistic in both runs, its change and its uncertainty."""

    task: str
    rm: str
    statistic: str
    n_shared: int
    base_value: float | None
    new_value: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    b: int | None
    c: int | None
    p_value: float | None
    regressed: bool


@dataclass(frozen=True)
class StepComparison:
    """All matched step-level cells of two runs and the verdict."""

    base: str
    new: str
    cells: list[StepCellComparison]
    only_in_base: list[tuple[str, str]]
    only_in_new: list[tuple[str, str]]
    max_drop: float
    alpha: float
    regressed: bool


def has_step_cells(run: RunResult) -> bool:
    """Whether a run holds any step-level cell."""
    return any(c.kind == "step" for c in run.cells)


def _by_problem(run: RunResult, cell: CellResult) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for r in cell.records:
        pid = str(r["problem_id"])
        if pid in out:
            raise DataError(f"{run.path}: cell {cell.id} has two records for solution {pid!r}; its samples file "
                            f"is damaged (re-run the cell)")
        out[pid] = r
    return out


# Each family: (statistic name, per-record hit or None, stratum of a record, statistic of index arrays).
def _processbench(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    hits = np.array([int(r["predicted"]) == int(r["label"]) for r in rows], dtype=float)
    strata = np.array([int(r["label"]) >= 0 for r in rows], dtype=int)
    return hits, strata


def _f1(hits: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """F1 per bootstrap row: `hits` [draws, n], `strata` [n] (1 = erroneous)."""
    err, cor = strata == 1, strata == 0
    e = hits[:, err].mean(axis=1) if err.any() else np.zeros(hits.shape[0])
    c = hits[:, cor].mean(axis=1) if cor.any() else np.zeros(hits.shape[0])
    return np.where(e + c > 0, 2 * e * c / np.where(e + c > 0, e + c, 1), 0.0)


def _prm800k(rows: Sequence[Mapping[str, Any]], threshold: float) -> np.ndarray:
    return np.array([r.get("score") is not None and (float(r["score"]) < threshold) == (int(r["rating"]) == -1)
                     for r in rows], dtype=float)


def _prmscores(conf: np.ndarray) -> np.ndarray:
    """PRMScore per bootstrap row of summed confusion counts [draws, 4] (TP, FP, TN, FN)."""
    out = []
    for tp, fp, tn, fn in conf:
        s = prmscore({"TP": tp, "FP": fp, "TN": tn, "FN": fn})["prmscore"]
        out.append(np.nan if s is None else s)
    return np.array(out)


def _resample(n: int, strata: np.ndarray | None, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap index draws [n_boot, n], stratified when `strata` is given."""
    if strata is None:
        return rng.integers(0, n, size=(n_boot, n))
    cols = []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        cols.append(members[rng.integers(0, members.size, size=(n_boot, members.size))])
    return np.concatenate(cols, axis=1)


def _family(task: str) -> str:
    return "processbench" if task.startswith("processbench") else task


def compare_step_cell(base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], task: str, rm: str,
                      threshold: float = 0.5, max_drop: float = 0.0, alpha: float = 0.05, n_boot: int = N_BOOT,
                      seed: int = 0) -> StepCellComparison:
    """Compare the paired records (same solutions, same order) of one step-level cell in two runs."""
    family, n = _family(task), len(base)
    rng = np.random.default_rng(seed)
    stat_of: Callable[[np.ndarray], np.ndarray]
    b = c = None
    if family == "processbench":
        statistic = "f1"
        hb, strata = _processbench(base)
        hn, _ = _processbench(new)
        idx = _resample(n, strata, n_boot, rng)
        vb, vn = _f1(hb[None, :], strata)[0], _f1(hn[None, :], strata)[0]
        draws = _f1(hn[idx], strata[idx[0]]) - _f1(hb[idx], strata[idx[0]])
    elif family == "prm800k_test":
        statistic = "accuracy"
        hb, hn = _prm800k(base, threshold), _prm800k(new, threshold)
        idx = _resample(n, None, n_boot, rng)
        vb, vn = float(hb.mean()), float(hn.mean())
        draws = hn[idx].mean(axis=1) - hb[idx].mean(axis=1)
    elif family == "prmbench_prm800k":
        statistic, hb, hn = "prmscore", None, None
        keys = ("TP", "FP", "TN", "FN")
        injected = [i for i, r in enumerate(base) if r.get("classification") != "correct"]
        cb = np.array([[int(base[i][k]) for k in keys] for i in injected])
        cn = np.array([[int(new[i][k]) for k in keys] for i in injected])
        idx = _resample(len(injected), None, n_boot, rng)
        vb, vn = _prmscores(cb.sum(axis=0)[None, :])[0], _prmscores(cn.sum(axis=0)[None, :])[0]
        draws = _prmscores(cn[idx].sum(axis=1)) - _prmscores(cb[idx].sum(axis=1))
    else:
        raise ConfigError(f"compare does not know the statistic of step-level task {task!r}")
    if hb is not None and hn is not None:
        b, c = int(((hb == 1) & (hn == 0)).sum()), int(((hb == 0) & (hn == 1)).sum())
    draws = draws[~np.isnan(draws)]
    low = high = None
    if draws.size:
        low, high = (float(x) for x in np.percentile(draws, [alpha / 2 * 100, (1 - alpha / 2) * 100]))
    vb_f = None if vb is None or np.isnan(vb) else float(vb)
    vn_f = None if vn is None or np.isnan(vn) else float(vn)
    delta = None if vb_f is None or vn_f is None else vn_f - vb_f
    p = None if b is None or c is None else mcnemar_exact_p(b, c)
    significant = p < alpha if p is not None else (high is not None and high < 0)
    regressed = delta is not None and delta < -max_drop and significant
    return StepCellComparison(task=task, rm=rm, statistic=statistic, n_shared=n, base_value=vb_f, new_value=vn_f,
                              delta=delta, ci_low=low, ci_high=high, b=b, c=c, p_value=p, regressed=bool(regressed))


def compare_step_runs(base: RunResult, new: RunResult, max_drop: float = 0.0, alpha: float = 0.05,
                      n_boot: int = N_BOOT, seed: int = 0) -> StepComparison:
    """Compare every step-level cell the two runs share (see the module docstring)."""
    bc = {(c.task, c.rm): c for c in base.cells if c.kind == "step"}
    nc = {(c.task, c.rm): c for c in new.cells if c.kind == "step"}
    matched = sorted(set(bc) & set(nc))
    if not matched:
        raise ConfigError(f"{base.path} and {new.path} share no step-level cell (task/rm); base has "
                          f"{', '.join('--'.join(k) for k in sorted(bc)) or 'none'}, new has "
                          f"{', '.join('--'.join(k) for k in sorted(nc)) or 'none'}")
    check_settings(base, new)
    results = []
    for key in matched:
        rb, rn = _by_problem(base, bc[key]), _by_problem(new, nc[key])
        shared = sorted(set(rb) & set(rn))
        if not shared:
            raise DataError(f"step-level cell {'--'.join(key)} has no solution in both runs; nothing to compare")
        threshold = float(bc[key].metrics.get("threshold", 0.5) or 0.5)
        results.append(compare_step_cell([rb[p] for p in shared], [rn[p] for p in shared], key[0], key[1],
                                         threshold=threshold, max_drop=max_drop, alpha=alpha, n_boot=n_boot, seed=seed))
    return StepComparison(base=str(base.path), new=str(new.path), cells=results,
                          only_in_base=sorted(set(bc) - set(nc)), only_in_new=sorted(set(nc) - set(bc)),
                          max_drop=max_drop, alpha=alpha, regressed=any(r.regressed for r in results))


def _pp(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}")


def render_step_comparison(cmp: StepComparison) -> str:
    """A readable report of the step-level comparison: one row per matched cell and the verdict."""
    rows = [[r.task, r.rm, r.statistic, r.n_shared, _pp(r.base_value), _pp(r.new_value), _pp(r.delta, True),
             "-" if r.ci_low is None else f"[{_pp(r.ci_low, True)}, {_pp(r.ci_high, True)}]",
             "-" if r.b is None else f"{r.b}/{r.c}", "-" if r.p_value is None else f"{r.p_value:.3g}",
             "REGRESSED" if r.regressed else "ok"] for r in cmp.cells]
    level = f"{100 * (1 - cmp.alpha):g}%"
    lines = [f"step-level cells (base: {cmp.base}, new: {cmp.new})", "",
             tabulate(rows, headers=["task", "rm", "statistic", "shared", "base %", "new %", "delta pp",
                                     f"{level} CI (paired bootstrap)", "b/c", "p (McNemar)", "status"],
                      tablefmt="github", disable_numparse=True), "",
             "b/c: solutions whose outcome (error location / rating verdict) is right in base only / in new only."]
    for label, keys in (("only in base", cmp.only_in_base), ("only in new", cmp.only_in_new)):
        if keys:
            lines.append(f"{label} (not compared): " + ", ".join("--".join(k) for k in keys))
    bad = [r for r in cmp.cells if r.regressed]
    lines.append(f"REGRESSION in {len(bad)} of {len(cmp.cells)} step-level cell(s) (drop > {100 * cmp.max_drop:.1f} pp, "
                 f"McNemar p < {cmp.alpha:g}; PRMBench: CI below 0)." if bad else
                 f"no step-level regression; {len(cmp.cells)} cell(s) compared.")
    return "\n".join(lines)
