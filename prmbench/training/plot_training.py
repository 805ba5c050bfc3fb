"""`prmbench plot-training DIR...`: PRM accuracy against training steps and against total FLOPs.

Reads each `train-prm` output folder's `prmbench_training.json` and the evaluation rows of its
`training_log.jsonl` (written by `--eval-task`), and draws two PNGs:

- `PREFIX_steps.png`: the metric against RM training steps, one line per run (the seed paper's
  "emergence" figure);
- `PREFIX_flops.png`: the metric against total compute = backbone pre-training FLOPs + RM
  training FLOPs up to that evaluation (log scale), one line per run, labelled with its size (the
  diminishing-returns figure). Runs whose pre-training FLOPs are unknown (no --pretrain-tokens,
  family not in the table) are left out of this figure and named on stderr.

Every plotted point is a row of `points()`, also printed as a table, so each number can be
recomputed from the logs. Drawn on matplotlib's Agg canvas (no display needed).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from prmbench.errors import ConfigError, DataError

#: Metrics tried, in order, when --metric is not given.
DEFAULT_METRICS = ("f1", "auroc", "accuracy", "prmscore")


@dataclass(frozen=True)
class TrainingPoint:
    """One evaluation of one run: where it was taken and what it measured."""

    run: str
    num_parameters: int
    step: int
    train_flops: float
    total_flops: float | None
    value: float


def _read_run(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    record_file, log_file = path / "prmbench_training.json", path / "training_log.jsonl"
    if not record_file.is_file() or not log_file.is_file():
        raise DataError(f"{path} is not a train-prm output folder (needs prmbench_training.json and "
                        f"training_log.jsonl); pass the --output folder of `prmbench train-prm`")
    rows = []
    for no, line in enumerate(log_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if no == len(log_file.read_text().splitlines()):
                break  # a torn last line of an interrupted run
            raise DataError(f"{log_file}:{no}: not valid JSON") from None
    return json.loads(record_file.read_text()), rows


def _pick_metric(evals: Sequence[dict[str, Any]], metric: str | None, where: str) -> str:
    keys = {k for r in evals for k, v in r["eval"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if metric is not None:
        if metric not in keys:
            raise ConfigError(f"--metric {metric}: not in the evaluations of {where}; available: {', '.join(sorted(keys))}")
        return metric
    for m in DEFAULT_METRICS:
        if m in keys:
            return m
    raise ConfigError(f"{where}: no metric among {', '.join(DEFAULT_METRICS)}; choose one with --metric "
                      f"({', '.join(sorted(keys))})")


def points(dirs: Sequence[str | Path], metric: str | None = None) -> tuple[str, list[TrainingPoint]]:
    """(metric name, every evaluation of every run as a TrainingPoint)."""
    out: list[TrainingPoint] = []
    chosen = metric
    for d in dirs:
        path = Path(d)
        record, rows = _read_run(path)
        evals = [r for r in rows if isinstance(r.get("eval"), dict)]
        if not evals:
            raise DataError(f"{path}: training_log.jsonl has no evaluation rows; train with --eval-task TASK "
                            f"--eval-every N to plot accuracy")
        chosen = _pick_metric(evals, chosen, str(path))
        pre = record.get("pretrain_flops")
        for r in evals:
            value = r["eval"].get(chosen)
            if not isinstance(value, (int, float)):
                continue
            train = float(r["train_flops"])
            out.append(TrainingPoint(run=path.name, num_parameters=int(record["num_parameters"]), step=int(r["step"]),
                                     train_flops=train, total_flops=None if pre is None else float(pre) + train,
                                     value=float(value)))
    assert chosen is not None
    return chosen, out


def _size(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def plot_training(dirs: Sequence[str | Path], output: str | Path, metric: str | None = None) -> list[Path]:
    """Write PREFIX_steps.png and (when any run has pre-training FLOPs) PREFIX_flops.png; returns the files."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    name, pts = points(dirs, metric)
    prefix = Path(output)
    if prefix.suffix == ".png":
        prefix = prefix.with_suffix("")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    runs = list(dict.fromkeys(p.run for p in pts))
    written = []
    for axis in ("steps", "flops"):
        fig = Figure(figsize=(6.4, 4.4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        drawn = 0
        for run in runs:
            mine = [p for p in pts if p.run == run]
            if axis == "flops":
                known = [p for p in mine if p.total_flops is not None]
                mine = [p for p in known if p.total_flops > 0]  # a log axis has no 0 (step 0 of a random init)
                if not known:
                    print(f"plot-training: {run} has no pre-training FLOPs (train with --pretrain-tokens); "
                          f"left out of the FLOPs figure", file=sys.stderr)
                    continue
                if not mine:
                    continue
            xs = [p.step if axis == "steps" else p.total_flops for p in mine]
            ax.plot(xs, [p.value for p in mine], marker="o", label=f"{run} ({_size(mine[0].num_parameters)} params)")
            drawn += 1
        if not drawn:
            continue
        if axis == "flops":
            ax.set_xscale("log")
            ax.set_xlabel("FLOPs: pre-training + RM training (log scale)")
        else:
            ax.set_xlabel("RM training steps")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(f"{prefix}_{axis}.png")
        fig.savefig(path, dpi=120)
        written.append(path)
    return written


def points_table(metric: str, pts: Sequence[TrainingPoint]) -> str:
    """The plotted points as a markdown table."""
    from tabulate import tabulate

    rows = [[p.run, p.num_parameters, p.step, f"{p.train_flops:.4g}",
             "" if p.total_flops is None else f"{p.total_flops:.4g}", f"{p.value:.4f}"] for p in pts]
    return tabulate(rows, headers=["run", "parameters", "step", "train_flops", "total_flops", metric], tablefmt="github")
