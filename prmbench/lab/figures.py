"""The lab's figures, each drawn from the leaderboard tables of its runs (Agg canvas, no display).

- ``accuracy_vs_budget_<domain>.png``: one subplot per strategy, accuracy against budget per reward model;
- ``accuracy_vs_wall_time_<domain>.png``: accuracy against mean seconds per problem per (reward model, strategy);
- ``bon_per_training_set.png``: best-of-N accuracy against budget per PRM (training set, backbone size), per domain;
- ``prm_size_flops.png``: best-of-N accuracy at the largest budget against PRM parameters and training FLOPs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd


def _figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.4) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(str(path), dpi=90)
    return path


def accuracy_vs_budget(df: pd.DataFrame, strategies: Sequence[str], path: Path, title: str) -> Path:
    """One subplot per strategy: accuracy (%) vs budget (log 2), one line per reward model."""
    fig, axes = _figure(len(strategies))
    for ax, strategy in zip(axes[0], strategies):
        part = df[df["strategy"] == strategy]
        for rm, rows in sorted(part.groupby("rm")):
            rows = rows.sort_values("budget")
            ax.plot(rows["budget"], 100 * rows["accuracy"], marker="o", label=str(rm))
        ax.set_xscale("log", base=2)
        ax.set_title(f"{title}: {strategy}")
        ax.set_xlabel("budget (n)")
        ax.set_ylabel("accuracy %")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    return _save(fig, path)


def accuracy_vs_wall_time(df: pd.DataFrame, path: Path, title: str) -> Path:
    """Accuracy (%) vs mean wall seconds per problem, one line per (reward model, strategy) across budgets."""
    fig, axes = _figure(1, width=7, height=5)
    ax = axes[0][0]
    for (rm, strategy), rows in sorted(df.groupby(["rm", "strategy"])):
        rows = rows.sort_values("budget")
        ax.plot(rows["mean_seconds"], 100 * rows["accuracy"], marker=".", label=f"{rm} / {strategy}")
    ax.set_xscale("log")
    ax.set_xlabel("mean wall seconds per problem (log)")
    ax.set_ylabel("accuracy %")
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def bon_per_training_set(curves: dict[str, dict[str, list[tuple[int, float]]]], path: Path) -> Path:
    """Best-of-N accuracy (%) vs budget; `curves`: domain -> reward model -> [(budget, accuracy)]."""
    fig, axes = _figure(len(curves))
    for ax, (domain, per_rm) in zip(axes[0], sorted(curves.items())):
        for rm, points in sorted(per_rm.items()):
            xs, ys = zip(*sorted(points))
            ax.plot(xs, [100 * y for y in ys], marker="o", label=rm)
        ax.set_xscale("log", base=2)
        ax.set_title(f"best-of-N on {domain}")
        ax.set_xlabel("budget (n)")
        ax.set_ylabel("accuracy %")
        ax.legend(fontsize=7)
    return _save(fig, path)


def prm_size_flops(rows: list[dict[str, Any]], budget: int, path: Path) -> Path:
    """Best-of-`budget` accuracy (%) vs PRM parameters and vs training FLOPs; `rows`: domain, prm,
    parameters, train_flops, accuracy."""
    fig, axes = _figure(2)
    for ax, key, label in ((axes[0][0], "parameters", "PRM parameters"), (axes[0][1], "train_flops", "PRM training FLOPs")):
        for domain in sorted({r["domain"] for r in rows}):
            part = [r for r in rows if r["domain"] == domain]
            ax.scatter([r[key] for r in part], [100 * r["accuracy"] for r in part], label=domain)
            for r in part:
                ax.annotate(r["prm"], (r[key], 100 * r["accuracy"]), fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (log)")
        ax.set_ylabel(f"best-of-{budget} accuracy %")
        ax.legend(fontsize=7)
    return _save(fig, path)
