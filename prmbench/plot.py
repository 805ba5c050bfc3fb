"""Accuracy against measured compute: one PNG with one subplot per task.

Drawn with matplotlib's object-oriented API on the Agg canvas, so it needs no display and does
not change the global pyplot backend of the calling program.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from prmbench.errors import ConfigError, DataError

_X_CHOICES: tuple[tuple[str, str], ...] = (
    ("mean_flops", "measured spend: mean FLOPs per problem (log scale)"),
    ("mean_generated_tokens", "mean generated tokens per problem (no FLOPs measured; log scale)"),
    ("budget", "budget (nominal: no compute measured; log scale)"),
)


def compute_axis(df: pd.DataFrame) -> tuple[str, str]:
    """The column to use as compute for these rows and its axis label.

    Measured FLOPs when any row has some, else generated tokens, else the nominal budget.
    """
    for col, label in _X_CHOICES:
        if col in df and (pd.to_numeric(df[col], errors="coerce").fillna(0) > 0).any():
            return col, label
    return _X_CHOICES[-1]


def _line_label(key: tuple[Any, ...], with_run: bool, with_policy: bool) -> str:
    run, policy, rm, strategy = key
    label = strategy if rm in ("none", "", None) else f"{rm} / {strategy}"
    if with_policy:
        label += f" [{policy}]"
    if with_run:
        label += f" ({run})"
    return label


def task_grid(n: int, row_height: float) -> tuple[Any, Any]:
    """A figure with one subplot per task (`n` of them, up to 3 per row, the spare ones hidden)
    and its axes, flattened in task order."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(5.2 * ncols, row_height * nrows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def plot_accuracy_vs_compute(df: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG of accuracy (with 95% CI error bars) against measured compute to `path`.

    `df` is a leaderboard table (`prmbench.leaderboard.leaderboard_table`). There is one subplot
    per task; x is the mean FLOPs per problem on a log scale (mean generated tokens when no
    FLOPs were measured for that task, the nominal budget when neither was); each
    (rm, strategy) pair (and run or policy, when the table holds several) is one line across its
    budgets, each point labelled with its budget. With FLOPs on x, a dotted vertical line marks
    each budget's mean allowance (`budget_flops`: best-of-N's compute), so strategies compared
    at matched compute sit at or left of their line. Returns the path written.

    Raises DataError when no cell has results, ConfigError when `path` cannot be written.
    """
    from matplotlib.ticker import PercentFormatter

    path = Path(path)
    required = {"task", "rm", "strategy", "budget", "accuracy", "ci_low", "ci_high"}
    missing = required - set(df.columns)
    if missing:
        raise DataError(f"the table to plot lacks column(s) {', '.join(sorted(missing))}; "
                        "pass a table from prmbench.leaderboard.leaderboard_table")
    data = df[pd.to_numeric(df["accuracy"], errors="coerce").notna()].copy()
    if data.empty:
        raise DataError("nothing to plot: no cell has any finished problem")
    for col in ("run", "policy"):
        if col not in data:
            data[col] = ""
    with_run = data["run"].nunique() > 1
    with_policy = data["policy"].nunique() > 1

    keys = sorted({tuple(k) for k in data[["run", "policy", "rm", "strategy"]].itertuples(index=False)})
    palette = [f"C{i % 10}" for i in range(len(keys))]
    colors = dict(zip(keys, palette))  # one colour per line, the same in every subplot
    tasks = sorted(data["task"].astype(str).unique())
    fig, axes = task_grid(len(tasks), row_height=4.2)

    for ax, task in zip(axes, tasks):
        sub = data[data["task"].astype(str) == task]
        xcol, xlabel = compute_axis(sub)
        x_all = pd.to_numeric(sub[xcol], errors="coerce")
        sub = sub[x_all > 0]
        dropped = int((~(x_all > 0)).sum())
        for key, line in sub.groupby(["run", "policy", "rm", "strategy"], sort=True):
            line = line.sort_values("budget")
            x = line[xcol].astype(float).to_numpy()
            y = line["accuracy"].astype(float).to_numpy()
            lo = line["ci_low"].astype(float).fillna(line["accuracy"]).to_numpy()
            hi = line["ci_high"].astype(float).fillna(line["accuracy"]).to_numpy()
            yerr = [(y - lo).clip(min=0), (hi - y).clip(min=0)]
            color = colors[tuple(key)]
            ax.errorbar(x, y, yerr=yerr, marker="o", markersize=4, capsize=3, linewidth=1.4, color=color,
                        label=_line_label(tuple(key), with_run, with_policy))
            for xi, yi, b in zip(x, y, line["budget"]):
                ax.annotate(f"N={int(b)}", (xi, yi), textcoords="offset points", xytext=(4, 4),
                            fontsize=7, color=color)
        if xcol == "mean_flops" and "budget_flops" in sub:
            allowance = pd.to_numeric(sub["budget_flops"], errors="coerce").groupby(sub["budget"]).mean().dropna()
            for b, x_allow in allowance.items():
                if x_allow > 0:
                    ax.axvline(x_allow, linestyle=":", color="grey", linewidth=1, alpha=0.7)
                    ax.annotate(f"allowance N={int(b)}", (x_allow, 0.0), xycoords=("data", "axes fraction"),
                                textcoords="offset points", xytext=(2, 3), fontsize=6, color="grey", rotation=90)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (95% Wilson CI)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_title(task if not dropped else f"{task} ({dropped} cell(s) without measured compute omitted)")
        ax.grid(True, which="both", alpha=0.3)
        if len(sub):
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(title or "Accuracy vs measured compute")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=130)
    except OSError as e:
        raise ConfigError(f"cannot write the plot to {path}: {e.strerror or e}. "
                          "Choose a writable file path ending in .png") from e
    return path
