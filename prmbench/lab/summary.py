"""The lab's report: leaderboard, Table 1 and accuracy-vs-budget tables, and ``lab_summary.json``.

Every number is recomputed from the runs' records (cells/*/samples.jsonl). ``lab_summary.json``::

    {"domains": {NAME: {"cells": {"prm": REL, "random": REL, "majority": REL, "oracle": REL, "single": REL},
                        "accuracy": {...same keys...}, "n_problems": N,
                        "prm_vs_random": {"diff": D, "mcnemar_p": P, "b": B, "c": C},
                        "checks": {"single_in_band": bool, "prm_beats_random": bool, "oracle_at_least_prm": bool,
                                   "enough_problems": bool}}},
     "budget": MAX_BUDGET, "times": {stage: seconds}, "prms": {name: folder}, "policies": {...}}

REL is a cell folder relative to the lab's output folder. ``prm`` is best-of-N at the largest
budget with the PRM trained on the domain's own labels (annotator a's backbone), ``random`` and
``oracle`` best-of-N with those reward models, ``majority`` majority vote, all at the largest
budget, and ``single`` best-of-N at budget 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prmbench.compare import mcnemar_exact_p
from prmbench.lab.config import DOMAINS
from prmbench.results import CellResult, load_run, write_json_atomic


def _own_prm(domain: str) -> str:
    return f"{domain.removeprefix('lab_')}_prm_a"


def _outcomes(cell: CellResult) -> dict[str, bool]:
    return {r["problem_id"]: bool(r["correct"]) for r in cell.records}


def _acc(cell: CellResult) -> float:
    out = _outcomes(cell)
    return sum(out.values()) / len(out) if out else 0.0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def write_summary(lab: Any) -> dict[str, Any]:
    """Write leaderboard.md, tables.md and lab_summary.json into the lab folder; return the summary."""
    from prmbench.leaderboard import leaderboard_table, render

    out: Path = lab.out
    cfg = lab.cfg
    top = max(cfg.budgets)
    names = {spec: name for name, spec in lab.rm_specs().items()}
    all_runs = {name: load_run(path) for name, path in lab.state["done"]["search"].items()}
    runs = {d: all_runs[d] for d in DOMAINS}
    (out / "leaderboard.md").write_text(render(leaderboard_table(list(all_runs.values())), "markdown") + "\n")
    from prmbench.plot import plot_accuracy_vs_compute

    (out / "figures").mkdir(exist_ok=True)
    for d in DOMAINS:  # accuracy vs measured FLOPs per (reward model, strategy), one line per pair
        df = leaderboard_table([runs[d]])
        df["rm"] = [names.get(r, r) for r in df["rm"]]  # lab names (math_prm_a, ...) instead of paths
        plot_accuracy_vs_compute(df, out / "figures" / f"accuracy_vs_compute_{d}.png", title=f"prmbench lab: {d}")
    summary: dict[str, Any] = {"domains": {}, "budget": top, "times": dict(lab.state["times"]),
                               "prms": dict(lab.state["done"]["prms"]),
                               "stepeval": lab.state["done"]["stepeval"],
                               "policies": dict(lab.state["done"]["policies"])}
    table1, curves = [], []
    for d, run in runs.items():
        cells = {(names.get(c.rm, c.rm), c.strategy, c.budget): c for c in run.cells}
        pick = {"prm": (_own_prm(d), "best_of_n", top), "random": ("random", "best_of_n", top),
                "majority": ("none", "majority_vote", top), "oracle": ("oracle", "best_of_n", top),
                "single": ("random", "best_of_n", 1)}
        chosen = {k: cells[key] for k, key in pick.items()}
        prm, rnd = _outcomes(chosen["prm"]), _outcomes(chosen["random"])
        b = sum(1 for p in prm if prm[p] and not rnd.get(p, False))
        c = sum(1 for p in prm if rnd.get(p, False) and not prm[p])
        acc = {k: round(_acc(v), 4) for k, v in chosen.items()}
        p_value = mcnemar_exact_p(b, c)
        n = len(prm)
        summary["domains"][d] = {
            "cells": {k: str((run.path / "cells" / v.id).relative_to(out)) for k, v in chosen.items()},
            "accuracy": acc, "n_problems": n,
            "prm_vs_random": {"diff": round(acc["prm"] - acc["random"], 4), "mcnemar_p": p_value, "b": b, "c": c},
            "checks": {"single_in_band": 0.15 <= acc["single"] <= 0.85,
                       "prm_beats_random": acc["prm"] - acc["random"] >= 0.10 and p_value < 0.05,
                       "oracle_at_least_prm": acc["oracle"] >= acc["prm"], "enough_problems": n >= 100},
        }
        for (rm, strategy, budget), cell in sorted(cells.items()):
            if budget == top:
                table1.append([d, rm, strategy, f"{100 * _acc(cell):.1f}"])
        for strategy in cfg.strategies:
            for rm in sorted({k[0] for k in cells}):
                curves.append([d, strategy, rm] + [f"{100 * _acc(cells[(rm, strategy, bb)]):.1f}"
                                                   for bb in cfg.budgets if (rm, strategy, bb) in cells])
    bon, sizes = [], []
    for d in DOMAINS:
        cells = {(names.get(c.rm, c.rm), c.budget): c for name, run in all_runs.items()
                 if name.startswith(d) for c in run.cells if c.strategy == "best_of_n"}
        for rm in sorted({k[0] for k in cells}):
            bon.append([d, rm] + [f"{100 * _acc(cells[(rm, b)]):.1f}" for b in cfg.budgets if (rm, b) in cells])
            log_path = Path(lab.state["done"]["prms"].get(rm, "")) / "train_log.json"
            if log_path.is_file() and (rm, top) in cells:
                log = json.loads(log_path.read_text())
                sizes.append([d, rm, log["parameters"], f"{log['train_flops']:.3g}", log["solutions"],
                              f"{100 * _acc(cells[(rm, top)]):.1f}"])
    steps = [[d, rm, m.get("n"), _pct(m.get("error_acc")), _pct(m.get("correct_acc")), _pct(m.get("f1")),
              "-" if m.get("auroc") is None else f"{m['auroc']:.3f}"]
             for d, per_rm in lab.state["done"]["stepeval"].items() for rm, m in per_rm.items()]
    text = ["# prmbench lab", "", f"## Table 1: accuracy % at budget {top} (unit n)", "",
            _table(table1, ["domain", "reward model", "strategy", "accuracy %"]), "",
            "## Accuracy % vs budget", "",
            _table(curves, ["domain", "strategy", "reward model"] + [f"n={b}" for b in cfg.budgets]), "",
            "## Best-of-N accuracy % vs budget per PRM training set", "",
            _table(bon, ["domain", "reward model"] + [f"n={b}" for b in cfg.budgets]), "",
            f"## PRM size and training FLOPs vs best-of-{top} accuracy %", "",
            _table(sizes, ["domain", "PRM", "parameters", "train FLOPs", "labelled solutions", "accuracy %"]), "",
            "## Step-level evaluation on held-out labelled solutions (threshold 0.5)", "",
            _table(steps, ["domain", "reward model", "solutions", "error acc %", "correct acc %", "F1 %", "step AUROC"]),
            ""]
    (out / "tables.md").write_text("\n".join(text))
    write_json_atomic(out / "lab_summary.json", summary)
    return {"summary": "lab_summary.json"}
