"""Leaderboard tables of step-level cells, and step metrics beside search gains per reward model.

`step_table` has one row per step-level cell (TASK--RM) and, for the all-subsets `processbench`
task, one more row per subset (`processbench[gsm8k]`). Its headline numbers: ProcessBench
f1 (with its bootstrap 95% CI), error_acc, correct_acc, the step-level AUROC; PRM800K test
AUROC and accuracy; PRMBench PRMScore.

`rm_table` answers "does a better step verifier give better search?": given runs that hold
step-level cells and search cells for the same reward models, one row per reward model with its
step metric of each step-level task (processbench*: f1, prm800k_test: auroc, prmbench_prm800k:
prmscore) and its best-of-N gain over majority vote at each (search task, budget): the accuracy of
best_of_n with that reward model minus the accuracy of majority_vote, over the problems both cells
hold (same run, task, policy and budget). `rank_correlations` gives Spearman's rank correlation
across reward models between each step metric and each gain (ties get average ranks; at least
3 reward models are needed, else None).
"""

from __future__ import annotations

import html as _html
import math
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from tabulate import tabulate

from prmbench.leaderboard import _check_format, _run_labels
from prmbench.results import CellResult, RunResult

STEP_COLUMNS: tuple[str, ...] = (
    "run", "task", "rm", "n", "f1", "f1_ci_low", "f1_ci_high", "error_acc", "correct_acc", "auroc",
    "solution_auroc", "accuracy", "prmscore", "threshold", "threshold_source", "f1_oracle_threshold",
    "n_truncated", "complete", "cell_id",
)
"""Columns of `step_table` (CSV keeps them raw, in this order)."""

HEADLINE = {"processbench": ("f1", "F1"), "prm800k_test": ("auroc", "AUROC"), "prmbench_prm800k": ("prmscore", "PRMScore")}
BEST_OF_N, MAJORITY = "best_of_n", "majority_vote"
MIN_RMS_FOR_CORRELATION = 3


def _family(task: str) -> str:
    return "processbench" if task.startswith("processbench") else task


def _row(label: str, cell: CellResult, task: str, m: Mapping[str, Any]) -> dict[str, Any]:
    ci = m.get("f1_ci") or [None, None]
    row = {"run": label, "task": task, "rm": cell.rm, "n": m.get("n") or 0, "f1_ci_low": ci[0], "f1_ci_high": ci[1],
           "complete": bool(cell.metrics.get("complete", False)), "cell_id": cell.id}
    for col in STEP_COLUMNS:
        row.setdefault(col, m.get(col))
    if _family(cell.task) != "processbench":  # f1 is ProcessBench's F1 here (PRMBench's step F1 is not)
        row["f1"] = None
    return row


def step_table(runs: Iterable[RunResult]) -> pd.DataFrame:
    """One row per step-level cell (plus per-subset rows of `processbench`), sorted by task then rm."""
    runs = list(runs)
    rows = []
    for label, run in zip(_run_labels(runs), runs):
        for cell in run.cells:
            if cell.kind != "step" or not cell.metrics:
                continue
            rows.append(_row(label, cell, cell.task, cell.metrics))
            subsets = cell.metrics.get("subsets") or {}
            if len(subsets) > 1:
                rows.extend(_row(label, cell, f"{cell.task}[{s}]", m) for s, m in subsets.items())
    df = pd.DataFrame(rows, columns=list(STEP_COLUMNS))
    return df.sort_values(["task", "rm", "run"], kind="stable").reset_index(drop=True) if not df.empty else df


def _accuracy_by_problem(cell: CellResult) -> dict[str, bool]:
    return {str(r["problem_id"]): bool(r.get("correct")) for r in cell.records}


def _gains(runs: Sequence[RunResult]) -> dict[tuple[str, int], dict[str, float]]:
    """(search task, budget) -> rm -> best-of-N accuracy minus majority-vote accuracy on shared problems."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    for run in runs:
        search = [c for c in run.cells if c.kind != "step"]
        votes = {(c.task, c.policy, c.budget): _accuracy_by_problem(c) for c in search if c.strategy == MAJORITY}
        for c in search:
            if c.strategy != BEST_OF_N or (c.task, c.policy, c.budget) not in votes:
                continue
            mv, bon = votes[(c.task, c.policy, c.budget)], _accuracy_by_problem(c)
            shared = sorted(set(mv) & set(bon))
            if shared:
                out.setdefault((c.task, c.budget), {})[c.rm] = sum(bon[p] - mv[p] for p in shared) / len(shared)
    return out


def _step_metrics(runs: Sequence[RunResult]) -> dict[str, dict[str, float]]:
    """step task -> rm -> its headline metric."""
    out: dict[str, dict[str, float]] = {}
    for run in runs:
        for c in run.cells:
            key = HEADLINE.get(_family(c.task), (None,))[0]
            value = c.metrics.get(key) if (c.kind == "step" and key) else None
            if isinstance(value, (int, float)):
                out.setdefault(c.task, {})[c.rm] = float(value)
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None below 3 pairs or for a constant side."""
    if len(xs) != len(ys) or len(xs) < MIN_RMS_FOR_CORRELATION:
        return None
    rx, ry = pd.Series(list(xs)).rank().to_numpy(), pd.Series(list(ys)).rank().to_numpy()
    dx, dy = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((dx * dx).sum() * (dy * dy).sum()))
    return None if den == 0 else float((dx * dy).sum() / den)


def _metric_label(task: str) -> str:
    return f"{task} {HEADLINE[_family(task)][1]}"


def rm_table(runs: Iterable[RunResult]) -> pd.DataFrame:
    """Per reward model: step metrics and best-of-N gains over majority vote (empty unless both exist)."""
    runs = list(runs)
    steps, gains = _step_metrics(runs), _gains(runs)
    rms = sorted({rm for d in steps.values() for rm in d} & {rm for d in gains.values() for rm in d})
    if not rms:
        return pd.DataFrame()
    rows = []
    for rm in rms:
        row: dict[str, Any] = {"rm": rm}
        row.update({_metric_label(t): steps[t].get(rm) for t in sorted(steps)})
        row.update({f"gain {t} @{b}": gains[(t, b)].get(rm) for t, b in sorted(gains)})
        rows.append(row)
    return pd.DataFrame(rows)


def rank_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation across reward models of each step metric with each gain column."""
    if table.empty:
        return pd.DataFrame()
    metrics = [c for c in table.columns if c != "rm" and not c.startswith("gain ")]
    gains = [c for c in table.columns if c.startswith("gain ")]
    rows = []
    for m in metrics:
        row: dict[str, Any] = {"step metric": m}
        for g in gains:
            both = table[[m, g]].dropna()
            rho = spearman(both[m].tolist(), both[g].tolist())
            row[g] = f"{rho:+.2f} (n={len(both)})" if rho is not None else f"- (n={len(both)})"
        rows.append(row)
    return pd.DataFrame(rows)


# -- rendering ---------------------------------------------------------------------------------------
def _pct(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * float(x):.1f}"


def _display_steps(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"run": df["run"], "task": df["task"], "rm": df["rm"], "n": df["n"].astype(int).astype(str)})
    out["F1 % [95% CI]"] = [
        "-" if _pct(f) == "-" else (f"{_pct(f)} [{_pct(lo)}, {_pct(hi)}]" if _pct(lo) != "-" else _pct(f))
        for f, lo, hi in zip(df["f1"], df["f1_ci_low"], df["f1_ci_high"])]
    for col, name in (("error_acc", "error acc %"), ("correct_acc", "correct acc %"), ("auroc", "AUROC %"),
                      ("accuracy", "PRM800K acc %"), ("prmscore", "PRMScore %")):
        out[name] = [_pct(x) for x in df[col]]
    out["threshold"] = ["-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.3g}"
                        for x in df["threshold"]]
    out["truncated"] = [str(int(x)) if isinstance(x, (int, float)) and not math.isnan(x) else "-"
                        for x in df["n_truncated"]]
    out["complete"] = ["yes" if c else "no" for c in df["complete"]]
    return out


def _display_rms(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"rm": df["rm"]})
    for col in df.columns[1:]:
        out[col + (" pp" if col.startswith("gain ") else " %")] = [
            "-" if x is None or (isinstance(x, float) and math.isnan(x)) else
            (f"{100 * float(x):+.1f}" if col.startswith("gain ") else f"{100 * float(x):.1f}") for x in df[col]]
    return out


def _render_one(df: pd.DataFrame, fmt: str, title: str) -> str:
    if fmt == "csv":
        return f"# {title}\n" + df.to_csv(index=False, lineterminator="\n")
    if fmt == "markdown":
        return f"### {title}\n\n" + tabulate(df.values.tolist(), headers=list(df.columns), tablefmt="pipe",
                                             disable_numparse=True)
    head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in row) + "</tr>\n"
                   for row in df.itertuples(index=False))
    return (f"<h3>{_html.escape(title)}</h3>\n<table class=\"prmbench-steps\">\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{body}</tbody>\n</table>")


def render_step_tables(runs: Iterable[RunResult], fmt: str = "markdown") -> str:
    """The step-level table, and (when the runs also hold search cells for the same reward models) the
    per-RM table with its rank correlations, as markdown, CSV (sections headed by '# title') or
    HTML; '' when no run holds a step-level cell."""
    fmt = _check_format(fmt)
    runs = list(runs)
    steps = step_table(runs)
    if steps.empty:
        return ""
    parts = [_render_one(steps if fmt == "csv" else _display_steps(steps), fmt, "step-level cells")]
    rms = rm_table(runs)
    if not rms.empty:
        parts.append(_render_one(rms if fmt == "csv" else _display_rms(rms), fmt,
                                 "step metrics and best-of-N gain over majority vote, per reward model"))
        corr = rank_correlations(rms)
        if len(corr.columns) > 1:
            parts.append(_render_one(corr, fmt, "Spearman rank correlation across reward models"))
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
