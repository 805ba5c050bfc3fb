"""Leaderboards over one or more run directories: one row per cell, as markdown, CSV or HTML.

`leaderboard_table` builds a pandas DataFrame from loaded runs (`prmbench.results.load_run`);
`render` turns it into text. CSV keeps raw numbers under plain column names (`COLUMNS`, then
`EXTRA_COLUMNS`) so it is machine readable; markdown and HTML show accuracy in percent with its
95% confidence interval, e.g. "41.0 [36.8, 45.3]".
"""

from __future__ import annotations

import html as _html
import math
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
from tabulate import tabulate

from prmbench.errors import ConfigError, did_you_mean
from prmbench.metrics import cell_metrics
from prmbench.results import CellResult, RunResult

COLUMNS: tuple[str, ...] = (
    "run", "task", "policy", "rm", "strategy", "budget", "n", "accuracy", "stderr", "ci_low", "ci_high",
    "mean_generated_tokens", "mean_flops", "mean_rm_tokens", "mean_seconds",
)
"""The leading columns of every leaderboard table, in this order."""

EXTRA_COLUMNS: tuple[str, ...] = (
    "n_correct", "mean_prompt_tokens", "mean_policy_flops", "mean_rm_flops", "mean_candidates",
    "complete", "cell_id", "budget_unit", "budget_flops", "mean_spend_flops",
)
"""Columns that follow `COLUMNS`; `complete` is False for cells an interrupted run did not finish.

`budget_unit` is the run's --budget-unit; `budget_flops` the mean FLOPs allowance per problem
(unit n: best-of-N's measured compute, enforced; nominal: the same, for reference; flops: the
cap; empty for tokens/seconds caps) and `mean_spend_flops` the mean measured FLOPs beside it."""

FORMATS: tuple[str, ...] = ("markdown", "csv", "html")
_ALIASES = {"md": "markdown", "htm": "html"}

_FLOAT_COLUMNS = ("accuracy", "stderr", "ci_low", "ci_high", "mean_generated_tokens", "mean_flops",
                  "mean_rm_tokens", "mean_seconds", "mean_prompt_tokens", "mean_policy_flops",
                  "mean_rm_flops", "mean_candidates", "budget_flops", "mean_spend_flops")


def _run_labels(runs: Sequence[RunResult]) -> list[str]:
    """Directory names of the runs; the full path where two runs share a directory name."""
    names = [r.path.resolve().name or str(r.path) for r in runs]
    return [str(r.path) if names.count(name) > 1 else name for r, name in zip(runs, names)]


def _cell_row_metrics(run: RunResult, cell: CellResult) -> tuple[dict[str, Any], bool]:
    """Metrics of a cell and whether it is complete.

    metrics.json is used when present and consistent with the loaded records; otherwise (an
    interrupted run, a cell still running) the metrics are computed from the records, and the cell
    counts as complete only when it has a record for every problem of its task.
    """
    stored = cell.metrics or {}
    if stored.get("n") is not None and (not cell.records or len(cell.records) == stored["n"]):
        return dict(stored), bool(stored.get("complete", False))
    metrics = cell_metrics(cell.typed_records())
    expected = run.info.tasks.get(cell.task, {}).get("n_problems")
    complete = expected is not None and metrics["n"] >= int(expected) > 0
    return metrics, complete


def leaderboard_table(runs: Iterable[RunResult]) -> pd.DataFrame:
    """One row per cell across `runs`, with the columns `COLUMNS` followed by `EXTRA_COLUMNS`.

    Rows are sorted by task, then budget, then accuracy (highest first; cells without records
    last). Metrics come from each cell's metrics.json when present, else from its records, so an
    interrupted run still gets a table; its unfinished cells have `complete` False.
    """
    runs = list(runs)
    rows: list[dict[str, Any]] = []
    for label, run in zip(_run_labels(runs), runs):
        for cell in run.cells:
            if cell.kind == "step":  # step-level cells have their own tables (prmbench.step_report)
                continue
            metrics, complete = _cell_row_metrics(run, cell)
            row: dict[str, Any] = {"run": label, "task": cell.task, "policy": cell.policy, "rm": cell.rm,
                                   "strategy": cell.strategy, "budget": int(cell.budget)}
            for col in (*COLUMNS, *EXTRA_COLUMNS):
                if col not in row:
                    row[col] = metrics.get(col)
            row["n"] = int(metrics.get("n") or 0)
            row["n_correct"] = int(metrics.get("n_correct") or 0)
            row["complete"] = complete
            row["cell_id"] = cell.id
            row["budget_unit"] = cell.budget_unit
            rows.append(row)
    df = pd.DataFrame(rows, columns=[*COLUMNS, *EXTRA_COLUMNS])
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["budget"] = df["budget"].astype(int)
    df["n"] = df["n"].astype(int)
    df["n_correct"] = df["n_correct"].astype(int)
    df["complete"] = df["complete"].astype(bool)
    if not df.empty:
        df = df.sort_values(["task", "budget", "accuracy", "run", "policy", "rm", "strategy"],
                            ascending=[True, True, False, True, True, True, True],
                            na_position="last", kind="stable")
    return df.reset_index(drop=True)


# -- rendering ---------------------------------------------------------------------------------
def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt(spec: str, scale: float = 1.0) -> Callable[[Any], str]:
    def f(x: Any) -> str:
        return "-" if _missing(x) else format(float(x) * scale, spec)
    return f


def format_accuracy_ci(acc: Any, low: Any, high: Any) -> str:
    """Accuracy in percent with its 95% CI, e.g. '41.0 [36.8, 45.3]'; '-' when there is none."""
    if _missing(acc):
        return "-"
    if _missing(low) or _missing(high):
        return f"{100 * acc:.1f}"
    return f"{100 * acc:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


_DISPLAY: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("stderr", "stderr %", _fmt(".1f", 100)),
    ("mean_generated_tokens", "gen tokens", _fmt(",.1f")),
    ("budget_flops", "budget FLOPs", _fmt(".3g")),
    ("mean_flops", "FLOPs", _fmt(".3g")),
    ("mean_rm_tokens", "RM tokens", _fmt(",.1f")),
    ("mean_seconds", "seconds", _fmt(".2f")),
)


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """The human-readable form of a leaderboard: strings, accuracy in percent with its 95% CI."""
    out = pd.DataFrame({c: df[c].astype(str) for c in ("run", "task", "policy", "rm", "strategy")})
    out["budget"] = df["budget"].astype(int).astype(str)
    out["n"] = df["n"].astype(int).astype(str)
    out["accuracy % [95% CI]"] = [format_accuracy_ci(a, lo, hi)
                                  for a, lo, hi in zip(df["accuracy"], df["ci_low"], df["ci_high"])]
    for src, name, f in _DISPLAY:
        out[name] = [f(x) for x in df[src]]
    out["complete"] = ["yes" if c else "no" for c in df["complete"]]
    return out


def _check_format(fmt: str) -> str:
    name = str(fmt).strip().lower()
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}.{did_you_mean(name, FORMATS)} "
                          f"Choose one of: {', '.join(FORMATS)}.")
    return name


def render(df: pd.DataFrame, fmt: str = "markdown") -> str:
    """Render a leaderboard table as 'markdown' (pipe table), 'csv' (raw numbers) or 'html'.

    Raises ConfigError, with a did-you-mean, for any other format.
    """
    name = _check_format(fmt)
    if name == "csv":
        return df.to_csv(index=False, lineterminator="\n")
    shown = display_table(df)
    if name == "markdown":
        if shown.empty:
            return "(no cells)"
        numeric = {"budget", "n", "accuracy % [95% CI]", "stderr %", "gen tokens", "budget FLOPs", "FLOPs", "RM tokens",
                   "seconds"}
        align = ["right" if c in numeric else "left" for c in shown.columns]
        return tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="pipe",
                        colalign=align, disable_numparse=True)
    head = "".join(f"<th>{_html.escape(c)}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in row) + "</tr>\n"
                   for row in shown.itertuples(index=False))
    return (f'<table class="prmbench-leaderboard">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}</tbody>\n</table>")
