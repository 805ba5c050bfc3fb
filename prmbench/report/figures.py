"""The report's figures as inline PNG data URIs, recomputed from the leaderboard table.

- accuracy vs measured compute with allowance lines (prmbench.plot.plot_accuracy_vs_compute);
- accuracy vs budget, one line per (reward model, strategy) (the paper's Fig. 4);
- accuracy vs wall-clock seconds per problem (Fig. 5);
- accuracy vs reward-model size, one line per (strategy, budget), when the runs hold several
  reward models of one family at different sizes (Fig. 1).
"""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from prmbench.plot import plot_accuracy_vs_compute, task_grid


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _scored(df: pd.DataFrame) -> pd.DataFrame:
    return df[pd.to_numeric(df["accuracy"], errors="coerce").notna()]


def _lines(df: pd.DataFrame, x: str, xlabel: str, group: list[str], title: str, log: bool) -> str | None:
    """One subplot per task, one line per `group` key, y = accuracy with its 95% CI."""
    from matplotlib.ticker import PercentFormatter

    data = _scored(df)
    data = data[pd.to_numeric(data[x], errors="coerce") > 0]
    if data.empty:
        return None
    tasks = sorted(data["task"].astype(str).unique())
    fig, axes = task_grid(len(tasks), row_height=4.0)
    for ax, task in zip(axes, tasks):
        sub = data[data["task"].astype(str) == task]
        for key, line in sub.groupby(group, sort=True):
            line = line.sort_values(x)
            y = line["accuracy"].astype(float).to_numpy()
            lo = line["ci_low"].astype(float).fillna(line["accuracy"]).to_numpy()
            hi = line["ci_high"].astype(float).fillna(line["accuracy"]).to_numpy()
            label = " / ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
            ax.errorbar(line[x].astype(float).to_numpy(), y, yerr=[(y - lo).clip(min=0), (hi - y).clip(min=0)],
                        marker="o", markersize=4, capsize=3, linewidth=1.4, label=label)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (95% Wilson CI)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    return _png(fig)


def _compute_figure(df: pd.DataFrame) -> str | None:
    if _scored(df).empty:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_accuracy_vs_compute(df, Path(tmp) / "compute.png")
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def figures(df: pd.DataFrame, rm_sizes: Mapping[str, float | None]) -> list[tuple[str, str, str]]:
    """(id, title, data URI) of every figure the table supports, in page order."""
    out: list[tuple[str, str, str]] = []
    shown = [
        ("compute", "Accuracy vs measured compute (dotted: each budget's allowance)", _compute_figure(df)),
        ("budget", "Accuracy vs budget per strategy (paper Fig. 4)",
         _lines(df, "budget", "budget N (log scale)", ["rm", "strategy"], "Accuracy vs budget", True)),
        ("seconds", "Accuracy vs wall-clock time (paper Fig. 5)",
         _lines(df, "mean_seconds", "mean wall-clock seconds per problem (log scale)", ["rm", "strategy"],
                "Accuracy vs wall-clock time", True)),
    ]
    sizes = {rm: s for rm, s in rm_sizes.items() if s}
    if len(set(sizes.values())) >= 2:
        with_size = df[df["rm"].isin(list(sizes))].copy()
        with_size["rm_parameters"] = with_size["rm"].map(sizes).astype(float)
        with_size["strategy@N"] = with_size["strategy"] + "@" + with_size["budget"].astype(str)
        shown.append(("rm_size", "Accuracy vs reward-model size (paper Fig. 1)",
                      _lines(with_size, "rm_parameters", "reward-model parameters (log scale)", ["strategy@N"],
                             "Accuracy vs PRM size", True)))
    for fid, title, uri in shown:
        if uri is not None:
            out.append((fid, title, uri))
    return out
