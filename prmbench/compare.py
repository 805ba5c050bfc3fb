"""Paired regression check of a new run against a base run.

Cells are paired by `pair_cells`: the same task, policy, rm, strategy, budget unit and budget
(an n4 cell is never paired with a tokens4 one); inside a cell, problems by problem_id, and only
problems present in both runs are compared. Per cell this reports both
accuracies on the shared problems, their difference, a paired bootstrap 95% CI of the difference
and McNemar's exact test on the discordant pairs:

    b = problems the base run got right and the new run got wrong
    c = problems the base run got wrong and the new run got right

Under "no change" each discordant problem is equally likely to fall either way, so
b ~ Binomial(b + c, 1/2); the two-sided exact p-value is min(1, 2 * P(X <= min(b, c))).
A cell regresses when its accuracy dropped, the drop is significant (p < alpha) and larger than
the tolerated `max_drop`.

Runs are refused (ConfigError, naming what differs) when their sampling settings (temperature,
top_p, max_tokens) or seed differ, or a task they share has a different version, data
fingerprint or configuration (its identity, which holds its grader versions): their numbers are
then not comparable (see prmbench.comparability). They are refused too when they share no cell.

This statistical check is for noisy runs. For deterministic runs (the CI fixture) use the exact
record-by-record comparison of prmbench.compare_exact (`prmbench compare --exact`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from tabulate import tabulate

from prmbench.comparability import check_settings
from prmbench.errors import ConfigError, DataError
from prmbench.results import CellResult, RunResult
from prmbench.types import Record

CellKey = tuple[str, str, str, str, str, int]
"""(task, policy, rm, strategy, budget unit, budget): how cells of two runs are matched."""


@dataclass(frozen=True)
class CellComparison:
    """The paired comparison of one cell present in both runs.

    Accuracies, `delta` (new - base) and its bootstrap CI are over the `n_shared` problems in both
    runs and are None when there are none. `b` counts problems right in base and wrong in new,
    `c` wrong in base and right in new (McNemar's discordant pairs).
    """

    task: str
    policy: str
    rm: str
    strategy: str
    budget: int
    budget_unit: str
    n_shared: int
    n_only_base: int
    n_only_new: int
    base_accuracy: float | None
    new_accuracy: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    b: int
    c: int
    p_value: float
    regressed: bool

    @property
    def key(self) -> CellKey:
        """(task, policy, rm, strategy, budget unit, budget)."""
        return (self.task, self.policy, self.rm, self.strategy, self.budget_unit, self.budget)


@dataclass(frozen=True)
class Comparison:
    """The result of `compare_runs`: per-cell comparisons and the overall verdict.

    `only_in_base` / `only_in_new` list the keys of cells present in one run only (not compared).
    `regressed` is True when any compared cell regressed.
    """

    base: str
    new: str
    cells: list[CellComparison]
    only_in_base: list[CellKey] = field(default_factory=list)
    only_in_new: list[CellKey] = field(default_factory=list)
    max_drop: float = 0.0
    alpha: float = 0.05
    n_boot: int = 2000
    seed: int = 0
    regressed: bool = False

    @property
    def regressions(self) -> list[CellComparison]:
        """The cells that regressed."""
        return [c for c in self.cells if c.regressed]


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts `b` and `c` (1.0 when b + c == 0)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative (got b={b}, c={c})")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2 ** n)  # exact integer arithmetic, one correctly rounded division


def paired_bootstrap_ci(base: np.ndarray, new: np.ndarray, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(new) - mean(base), resampling problems (pairs) with replacement.

    `base` and `new` are 0/1 outcomes of the same problems in the same order. The difference of
    one resample depends only on how many drawn problems are "gained" (new - base = +1) and "lost"
    (-1), so resampling n problems with replacement is drawn exactly as a multinomial over those
    three kinds of problem: the same distribution as drawing indices, in O(n_boot) time and memory.
    Uses `numpy.random.default_rng(seed)`.
    """
    d = np.asarray(new, dtype=np.int64) - np.asarray(base, dtype=np.int64)
    n = int(d.size)
    if n == 0:
        raise ValueError("the bootstrap needs at least one shared problem")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive (got {n_boot})")
    gained, lost = int((d > 0).sum()), int((d < 0).sum())
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [gained / n, lost / n, (n - gained - lost) / n], size=n_boot)
    deltas = (counts[:, 0] - counts[:, 1]) / n
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


def cell_key(cell: CellResult) -> CellKey:
    """The identity a cell is paired by: (task, policy, rm, strategy, budget unit, budget)."""
    return (cell.task, cell.policy, cell.rm, cell.strategy, cell.budget_unit, int(cell.budget))


def format_key(key: CellKey) -> str:
    """A cell key as text: task/policy/rm/strategy/UNITBUDGET (the unit as in cell ids: n4, tokens2000)."""
    task, policy, rm, strategy, unit, budget = key
    return f"{task}/{policy}/{rm}/{strategy}/{unit}{budget}"


def _show_keys(keys: Any) -> str:
    keys = sorted(keys)
    text = ", ".join(format_key(k) for k in keys[:4])
    return text + (f" and {len(keys) - 4} more" if len(keys) > 4 else "") if keys else "none"


@dataclass(frozen=True)
class CellPairing:
    """The cells of two runs, paired: `matched` (base cell, new cell) pairs in key order, and the keys
    of cells present in one run only."""

    matched: list[tuple[CellResult, CellResult]]
    only_in_base: list[CellKey]
    only_in_new: list[CellKey]


def pair_cells(base: RunResult, new: RunResult) -> CellPairing:
    """Pair the cells of two runs by `cell_key`; ConfigError when they share none (saying why).

    The one place that decides which cells are compared with which (both the statistical and the
    exact comparison use it). A run holding two cells with one key is damaged (DataError).
    """
    cells: list[dict[CellKey, CellResult]] = []
    for run in (base, new):
        by_key: dict[CellKey, CellResult] = {}
        for c in run.cells:
            if c.kind == "step":  # step-level cells: prmbench.step_compare
                continue
            if cell_key(c) in by_key:
                raise DataError(f"{run.path / 'run.json'} lists two cells for {format_key(cell_key(c))} "
                                f"({by_key[cell_key(c)].id}, {c.id}); the run directory is damaged (re-run it)")
            by_key[cell_key(c)] = c
        cells.append(by_key)
    base_cells, new_cells = cells
    matched = sorted(set(base_cells) & set(new_cells))
    if not matched:
        units = {k[4] for k in base_cells}, {k[4] for k in new_cells}
        why = ""
        if units[0] != units[1]:
            why = (f" Their budget units differ (base: {', '.join(sorted(units[0]))}; new: {', '.join(sorted(units[1]))}): "
                   "budgets in different units are different compute, so re-run one with the other's --budget-unit.")
        raise ConfigError(f"{base.path} and {new.path} share no cell (task/policy/rm/strategy/unit+budget), so there is "
                          f"nothing to compare. Base has: {_show_keys(base_cells)}. New has: {_show_keys(new_cells)}.{why}")
    return CellPairing(matched=[(base_cells[k], new_cells[k]) for k in matched],
                       only_in_base=sorted(set(base_cells) - set(new_cells)),
                       only_in_new=sorted(set(new_cells) - set(base_cells)))


def records_by_problem(run: RunResult, cell: CellResult) -> dict[str, Record]:
    """A cell's records (typed) by problem id; DataError when a problem has two (a damaged samples file)."""
    out: dict[str, Record] = {}
    for r in cell.typed_records():
        pid = r.problem_id
        if pid in out:
            raise DataError(f"{run.path}: cell {cell.id} has two records for problem {pid!r}; "
                            "its samples file is damaged (re-run the cell)")
        out[pid] = r
    return out


def _outcomes(run: RunResult, cell: CellResult) -> dict[str, bool]:
    return {pid: r.correct for pid, r in records_by_problem(run, cell).items()}


def compare_cell(base_cell: CellResult, new_cell: CellResult, base_outcomes: Mapping[str, bool],
                 new_outcomes: Mapping[str, bool], max_drop: float = 0.0, alpha: float = 0.05,
                 n_boot: int = 2000, seed: int = 0) -> CellComparison:
    """Compare one matched cell on the problems both runs solved (see the module docstring)."""
    shared = sorted(set(base_outcomes) & set(new_outcomes))
    n = len(shared)
    base_acc = new_acc = delta = low = high = None
    b = c = 0
    p = 1.0
    if n:
        x = np.array([base_outcomes[pid] for pid in shared], dtype=np.int64)
        y = np.array([new_outcomes[pid] for pid in shared], dtype=np.int64)
        base_acc, new_acc = float(x.mean()), float(y.mean())
        b = int(((x == 1) & (y == 0)).sum())
        c = int(((x == 0) & (y == 1)).sum())
        delta = (c - b) / n  # exactly new_acc - base_acc, without float cancellation
        p = mcnemar_exact_p(b, c)
        low, high = paired_bootstrap_ci(x, y, n_boot=n_boot, seed=seed)
    regressed = delta is not None and delta < 0 and p < alpha and -delta > max_drop
    return CellComparison(
        task=base_cell.task, policy=base_cell.policy, rm=base_cell.rm, strategy=base_cell.strategy,
        budget=int(base_cell.budget), budget_unit=base_cell.budget_unit, n_shared=n, n_only_base=len(set(base_outcomes) - set(new_outcomes)),
        n_only_new=len(set(new_outcomes) - set(base_outcomes)), base_accuracy=base_acc, new_accuracy=new_acc,
        delta=delta, ci_low=low, ci_high=high, b=b, c=c, p_value=p, regressed=bool(regressed))


def compare_runs(base: RunResult, new: RunResult, max_drop: float = 0.0, alpha: float = 0.05,
                 n_boot: int = 2000, seed: int = 0) -> Comparison:
    """Paired comparison of `new` against `base`, cell by cell (see the module docstring).

    Both runs must be loaded with their records. Raises ConfigError when the sampling settings,
    seed or a shared task's version, data fingerprint or configuration differ (`check_settings`),
    when the runs share no cell (`pair_cells`), or for out-of-range arguments;
    DataError when the shared cells have no problem in common or a samples file is damaged.
    """
    if not 0 <= max_drop <= 1:
        raise ConfigError(f"max_drop is an accuracy difference between 0 and 1 (got {max_drop})")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha is a significance level between 0 and 1 (got {alpha})")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be a positive number of bootstrap resamples (got {n_boot})")

    check_settings(base, new)
    pairing = pair_cells(base, new)
    results = [compare_cell(bc, nc, _outcomes(base, bc), _outcomes(new, nc), max_drop=max_drop, alpha=alpha,
                            n_boot=n_boot, seed=seed) for bc, nc in pairing.matched]
    if sum(r.n_shared for r in results) == 0:
        raise DataError(f"the cells shared by {base.path} and {new.path} have no problem in common (or no records "
                        "were loaded: use load_run(path, with_records=True)); nothing can be compared")
    return Comparison(
        base=str(base.path), new=str(new.path), cells=results, only_in_base=pairing.only_in_base,
        only_in_new=pairing.only_in_new, max_drop=max_drop, alpha=alpha, n_boot=n_boot, seed=seed,
        regressed=any(r.regressed for r in results))


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def _status(r: CellComparison, cmp: Comparison) -> str:
    if r.n_shared == 0:
        return "no shared problems"
    if r.regressed:
        return "REGRESSED"
    assert r.delta is not None
    if r.p_value < cmp.alpha and r.delta < 0:
        return "drop within max-drop"
    if r.p_value < cmp.alpha and r.delta > 0:
        return "improved"
    return "ok"


def render_comparison(cmp: Comparison) -> str:
    """A readable report: one row per compared cell, the cells in one run only, and the verdict."""
    rows = []
    for r in cmp.cells:
        rows.append([r.task, r.policy, r.rm, r.strategy, r.budget_unit, r.budget,
                     f"{r.n_shared} (+{r.n_only_base} base, +{r.n_only_new} new)" if (r.n_only_base or r.n_only_new)
                     else str(r.n_shared),
                     _pct(r.base_accuracy), _pct(r.new_accuracy), _pct(r.delta, signed=True),
                     "-" if r.ci_low is None else f"[{_pct(r.ci_low, True)}, {_pct(r.ci_high, True)}]",
                     f"{r.b}/{r.c}", f"{r.p_value:.3g}", _status(r, cmp)])
    headers = ["task", "policy", "rm", "strategy", "unit", "budget", "shared problems", "base %", "new %", "delta pp",
               "95% CI (bootstrap)", "b/c", "p (McNemar)", "status"]
    lines = [f"base: {cmp.base}", f"new:  {cmp.new}", "",
             tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True,
                      colalign=["left"] * 5 + ["right"] * 8 + ["left"]), "",
             "b/c: problems right in base only / right in new only; accuracies over shared problems."]
    for label, keys in (("only in base (not compared)", cmp.only_in_base), ("only in new (not compared)", cmp.only_in_new)):
        if keys:
            lines.append(f"{label}: " + ", ".join(format_key(k) for k in keys))
    lines.append("")
    crit = f"p < {cmp.alpha:g} and drop > {100 * cmp.max_drop:.1f} pp"
    if cmp.regressed:
        lines.append(f"REGRESSION in {len(cmp.regressions)} of {len(cmp.cells)} cell(s) ({crit}).")
    else:
        lines.append(f"no regression: no cell dropped significantly beyond the tolerance ({crit}); "
                     f"{len(cmp.cells)} cell(s) compared.")
    return "\n".join(lines)
