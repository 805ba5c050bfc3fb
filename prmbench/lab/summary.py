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


def _paired(a: CellResult, b: CellResult) -> dict[str, Any]:
    """Accuracies of two cells on the same problems, their difference and the exact McNemar p."""
    oa, ob = _outcomes(a), _outcomes(b)
    common = sorted(set(oa) & set(ob))
    wins = sum(1 for p in common if oa[p] and not ob[p])
    losses = sum(1 for p in common if ob[p] and not oa[p])
    acc_a = sum(oa[p] for p in common) / len(common) if common else 0.0
    acc_b = sum(ob[p] for p in common) / len(common) if common else 0.0
    return {"a": round(acc_a, 4), "b": round(acc_b, 4), "diff": round(acc_a - acc_b, 4),
            "mcnemar_p": mcnemar_exact_p(wins, losses), "wins": wins, "losses": losses, "n": len(common)}


def _findings(d: str, cells: dict[tuple[str, str, int], CellResult], budgets: tuple[int, ...]) -> dict[str, Any]:
    """The comparisons the issue asks to report (no threshold): each `_paired` (a vs b) where both cells exist.

    ``prm_vs_single`` compares with one sample, the expected accuracy of picking one of the N
    samples uniformly: the `random` reward model scores each distinct text once (a hash), so at
    large N it picks among distinct texts, and wrong solutions are more often distinct than right
    ones (which repeat): random@N can fall below one sample.
    """
    top, own = max(budgets), _own_prm(d)
    pairs = {"prm_vs_single": ((own, "best_of_n", top), ("random", "best_of_n", 1)),
             "prm_vs_majority": ((own, "best_of_n", top), ("none", "majority_vote", top)),
             "prm_weighted_vs_majority": ((own, "weighted_majority", top), ("none", "majority_vote", top)),
             "math_prm_vs_code_prm": (("math_prm_a", "best_of_n", top), ("code_prm_a", "best_of_n", top)),
             "filtered_vs_unfiltered": ((f"{own}_filtered", "best_of_n", top), (own, "best_of_n", top)),
             "size_a_vs_b": ((own, "best_of_n", top), (f"{own.removesuffix('_a')}_b", "best_of_n", top))}
    out: dict[str, Any] = {k: _paired(cells[a], cells[b]) for k, (a, b) in pairs.items() if a in cells and b in cells}
    out["mcts_vs_best_of_n"] = {str(n): _paired(cells[(own, "mcts", n)], cells[(own, "best_of_n", n)])
                                for n in budgets if (own, "mcts", n) in cells and (own, "best_of_n", n) in cells}
    return out


def write_summary(lab: Any) -> dict[str, Any]:
    """Write leaderboard.md, tables.md, figures/ and lab_summary.json into the lab folder; return the summary."""
    from prmbench.lab import figures
    from prmbench.leaderboard import leaderboard_table, render

    out: Path = lab.out
    cfg = lab.cfg
    top = max(cfg.budgets)
    names = {spec: name for name, spec in lab.rm_specs().items()}
    all_runs = {name: load_run(path) for name, path in lab.state["done"]["search"].items()}
    runs = {d: all_runs[d] for d in DOMAINS}
    (out / "leaderboard.md").write_text(render(leaderboard_table(list(all_runs.values())), "markdown") + "\n")
    from prmbench.plot import plot_accuracy_vs_compute

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    for d in DOMAINS:  # accuracy vs measured FLOPs, vs budget per strategy, vs wall time
        df = leaderboard_table([runs[d]])
        df["rm"] = [names.get(r, r) for r in df["rm"]]  # lab names (math_prm_a, ...) instead of paths
        plot_accuracy_vs_compute(df, fig_dir / f"accuracy_vs_compute_{d}.png", title=f"prmbench lab: {d}")
        figures.accuracy_vs_budget(df, cfg.strategies, fig_dir / f"accuracy_vs_budget_{d}.png", d)
        figures.accuracy_vs_wall_time(df, fig_dir / f"accuracy_vs_wall_time_{d}.png", f"prmbench lab: {d}")
    summary: dict[str, Any] = {"domains": {}, "budget": top, "times": dict(lab.state["times"]),
                               "prms": dict(lab.state["done"]["prms"]),
                               "stepeval": lab.state["done"]["stepeval"],
                               "similarity": lab.state["done"].get("similarity"),
                               "policies": dict(lab.state["done"]["policies"])}
    table1, curves = [], []
    for d, run in runs.items():
        cells = {(names.get(c.rm, c.rm), c.strategy, c.budget): c for c in run.cells}
        if f"{d}-bon" in all_runs:
            cells.update({(names.get(c.rm, c.rm), c.strategy, c.budget): c for c in all_runs[f"{d}-bon"].cells})
        pick = {"prm": (_own_prm(d), "best_of_n", top), "random": ("random", "best_of_n", top),
                "majority": ("none", "majority_vote", top), "oracle": ("oracle", "best_of_n", top),
                "single": ("random", "best_of_n", 1)}
        chosen = {k: cells[key] for k, key in pick.items()}
        vs_random = _paired(chosen["prm"], chosen["random"])
        acc = {k: round(_acc(v), 4) for k, v in chosen.items()}
        n = len(_outcomes(chosen["prm"]))
        summary["domains"][d] = {
            "cells": {k: str((run.path / "cells" / v.id).relative_to(out)) for k, v in chosen.items()},
            "accuracy": acc, "n_problems": n,
            "prm_vs_random": {"diff": vs_random["diff"], "mcnemar_p": vs_random["mcnemar_p"],
                              "b": vs_random["wins"], "c": vs_random["losses"]},
            "checks": {"single_in_band": 0.15 <= acc["single"] <= 0.85,
                       "prm_beats_random": vs_random["diff"] >= 0.10 and vs_random["mcnemar_p"] < 0.05,
                       "oracle_at_least_prm": acc["oracle"] >= acc["prm"], "enough_problems": n >= 100},
            "findings": _findings(d, cells, cfg.budgets),
        }
        main_ids = {id(c) for c in run.cells}
        for (rm, strategy, budget), cell in sorted(cells.items(), key=lambda kv: kv[0]):
            if budget == top and id(cell) in main_ids:
                table1.append([d, rm, strategy, f"{100 * _acc(cell):.1f}"])
        for strategy in cfg.strategies:
            for rm in sorted({k[0] for k in cells}):
                if (rm, strategy, top) in cells:
                    curves.append([d, strategy, rm] + [f"{100 * _acc(cells[(rm, strategy, bb)]):.1f}"
                                                       for bb in cfg.budgets if (rm, strategy, bb) in cells])
    bon, sizes, bon_curves = [], [], {}
    for d in DOMAINS:
        cells = {(names.get(c.rm, c.rm), c.budget): c for name, run in all_runs.items()
                 if name.startswith(d) for c in run.cells if c.strategy == "best_of_n"}
        for rm in sorted({k[0] for k in cells}):
            points = [(b, _acc(cells[(rm, b)])) for b in cfg.budgets if (rm, b) in cells]
            bon.append([d, rm] + [f"{100 * a:.1f}" for _, a in points])
            bon_curves.setdefault(d, {})[rm] = points
            log_path = Path(lab.state["done"]["prms"].get(rm, "")) / "prmbench_training.json"
            if log_path.is_file() and (rm, top) in cells:
                log = json.loads(log_path.read_text())
                sizes.append({"domain": d, "prm": rm, "parameters": log["num_parameters"],
                              "train_flops": log["train_flops"], "solutions": sum(s["used"] for s in log["data"]),
                              "accuracy": _acc(cells[(rm, top)])})
    figures.bon_per_training_set(bon_curves, fig_dir / "bon_per_training_set.png")
    if sizes:
        figures.prm_size_flops(sizes, top, fig_dir / "prm_size_flops.png")
    steps = [[d, rm, m.get("n"), _pct(m.get("error_acc")), _pct(m.get("correct_acc")), _pct(m.get("f1")),
              "-" if m.get("auroc") is None else f"{m['auroc']:.3f}"]
             for d, per_rm in lab.state["done"]["stepeval"].items() for rm, m in per_rm.items()]
    sim = lab.state["done"].get("similarity") or {"S": {}}
    sim_rows = [[ref] + [f"{v:.4f}" for v in per.values()] for ref, per in sim["S"].items()]
    sim_header = ["reference model"] + [f"{a} vs {b}" for a, b in sim.get("pairs", [])]
    text = ["# prmbench lab", "", f"## Table 1: accuracy % at budget {top} (unit n)", "",
            _table(table1, ["domain", "reward model", "strategy", "accuracy %"]), "",
            "## Table 2: gradient-based similarity S of response sets", "",
            _table(sim_rows, sim_header) if sim_rows else "(not computed)", "",
            "## Accuracy % vs budget", "",
            _table(curves, ["domain", "strategy", "reward model"] + [f"n={b}" for b in cfg.budgets]), "",
            "## Best-of-N accuracy % vs budget per PRM training set", "",
            _table(bon, ["domain", "reward model"] + [f"n={b}" for b in cfg.budgets]), "",
            f"## PRM size and training FLOPs vs best-of-{top} accuracy %", "",
            _table([[r["domain"], r["prm"], r["parameters"], f"{r['train_flops']:.3g}", r["solutions"],
                     f"{100 * r['accuracy']:.1f}"] for r in sizes],
                   ["domain", "PRM", "parameters", "train FLOPs", "labelled solutions", "accuracy %"]), "",
            "## Step-level evaluation on held-out labelled solutions (threshold 0.5)", "",
            _table(steps, ["domain", "reward model", "solutions", "error acc %", "correct acc %", "F1 %", "step AUROC"]),
            ""]
    (out / "tables.md").write_text("\n".join(text))
    write_json_atomic(out / "lab_summary.json", summary)
    return {"summary": "lab_summary.json"}
