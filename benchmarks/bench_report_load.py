"""Benchmark: the report page of a large study (500 problems x 30 cells) in headless Chromium.

Writes a synthetic run directory in the results schema (10 strategies x 3 budgets; 500 records
per cell with a 5-step chosen solution, 8 candidates, grade details; a 40-node search tree per
record of the step-level cells), renders `prmbench report`, and times in headless Chromium
(prmbench.testing.browser): the page load (navigation to the load event), the problem list ready,
and opening one problem's drill-down with every cell parsed and a tree expanded. The baseline in
the same run is the same page for 20 problems x 3 cells: the ratio says how page time grows with
a 250x larger study (lazy rendering keeps it far below 250x).

Usage:

    python benchmarks/bench_report_load.py [--problems 500] [--cells 30]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from prmbench.report import write_report
from prmbench.results import CELLS_DIR, RUN_FILE, SAMPLES_FILE, SCHEMA_VERSION, TREES_FILE
from prmbench.testing.browser import Browser

STRATS = ("best_of_n", "majority_vote", "weighted_majority", "beam_search", "dvts", "mcts", "best_of_n_min",
          "mcts_rollout", "beam_search_greedy", "best_of_n_prod")
STEPWISE = ("beam_search", "dvts", "mcts", "mcts_rollout", "beam_search_greedy")


def write_study(root: Path, problems: int, cells: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    ids = []
    for i in range(cells):
        strategy, budget = STRATS[i % len(STRATS)], (4, 16, 64)[(i // len(STRATS)) % 3]
        cid = f"math500--prm--{strategy}--n{budget}"
        ids.append({"id": cid, "task": "math500", "rm": "prm", "strategy": strategy, "budget": budget,
                    "budget_unit": "n", "policy": "hf:model"})
        d = root / CELLS_DIR / cid
        d.mkdir(parents=True)
        with open(d / SAMPLES_FILE, "w") as f, open(d / TREES_FILE, "w") as t:
            for p in range(problems):
                steps = [f"Step {k + 1}: " + " ".join(rng.choice("abcdefghij") * 6 for _ in range(16)) for k in range(5)]
                scores = [round(rng.random(), 4) for _ in steps]
                flops = 1e9 * budget * (0.9 + 0.2 * rng.random())
                rec = {"problem_id": f"test/p{p:04d}.json", "task": "math500", "rm": "prm", "strategy": strategy,
                       "budget": budget, "seed": 0, "correct": rng.random() < 0.5, "answer": str(rng.randint(0, 99)),
                       "chosen_text": "\n\n".join(steps), "n_candidates": 8,
                       "spend": {"prompt_tokens": 300 * budget, "generated_tokens": 200 * budget, "rm_tokens": 500 * budget,
                                 "policy_calls": budget, "rm_calls": budget, "seconds": 0.1 * budget,
                                 "policy_flops": 0.8 * flops, "rm_flops": 0.2 * flops, "flops": flops},
                       "grade_details": {"extracted": "42", "gold": "42", "method": "math_verify"},
                       "info": {"wall_seconds": 0.1 * budget, "chosen_index": 0, "chosen_score": scores[-1],
                                "chosen_step_scores": scores, "candidate_scores": [rng.random() for _ in range(8)],
                                "candidate_answers": [str(rng.randint(0, 99)) for _ in range(8)]},
                       "budget_unit": "n", "allowance_flops": 1e9 * budget}
                f.write(json.dumps(rec) + "\n")
                if strategy in STEPWISE:
                    nodes = [{"id": 0, "parent": None, "text": "", "score": None, "step_scores": [], "depth": 0,
                              "kind": "root", "finished": False, "truncated": False, "expanded": True,
                              "candidate": None, "chosen": False, "pruned": False, "visits": 40, "value": 0.5}]
                    for n in range(1, 40):
                        par = rng.randrange(0, n)
                        nodes.append({"id": n, "parent": par, "text": steps[n % 5], "score": rng.random(),
                                      "step_scores": [rng.random()], "depth": nodes[par]["depth"] + 1, "kind": "step",
                                      "finished": n % 7 == 0, "truncated": False, "expanded": False,
                                      "candidate": None, "chosen": n == 39, "pruned": n % 5 == 0, "visits": 1,
                                      "value": rng.random()})
                    t.write(json.dumps({"problem_id": rec["problem_id"], "strategy": strategy, "nodes": nodes}) + "\n")
    run = {"schema_version": SCHEMA_VERSION, "status": "complete", "created": "2026-01-01T00:00:00", "budget_unit": "n",
           "tasks": {"math500": {"n_problems": problems}}, "cells": ids,
           "components": {"rms": {"prm": {"num_parameters": 7e9}}}}
    (root / RUN_FILE).write_text(json.dumps(run))
    return root


def measure(tmp: Path, name: str, problems: int, cells: int) -> dict[str, float]:
    run = write_study(tmp / name, problems, cells)
    t0 = time.perf_counter()
    page = write_report([run], tmp / f"{name}.html")
    build = time.perf_counter() - t0
    with Browser() as b:
        b.open(tmp / "blank.html")  # warm the browser
        load = b.open(page)
        t1 = time.perf_counter()
        rows = b.evaluate("document.querySelectorAll('#problems tbody tr').length")
        ready = time.perf_counter() - t1
        t2 = time.perf_counter()
        opened = b.evaluate("""(() => { window.prmbenchReport.openProblem(0);
            document.querySelectorAll('#drill details').forEach(d => { d.open = true; d.dispatchEvent(new Event('toggle')); });
            const tog = Array.from(document.querySelectorAll('#drill .tree .tog')).find(t => t.textContent === '\\u25B8');
            if (tog) tog.click();
            return document.querySelectorAll('#drill details').length; })()""")
        drill = time.perf_counter() - t2
    return {"size_mb": page.stat().st_size / 1e6, "build_s": build, "load_s": load, "list_s": ready,
            "drill_s": drill, "rows": rows, "cells_opened": opened}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--cells", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "blank.html").write_text("<html></html>")
        small = measure(Path(tmp), "small", 20, 3)
        large = measure(Path(tmp), "large", a.problems, a.cells)
    for name, m in (("20 x 3", small), (f"{a.problems} x {a.cells}", large)):
        print(f"{name}: page {m['size_mb']:.1f} MB, built in {m['build_s']:.1f} s; load event {m['load_s']:.2f} s; "
              f"problem list ({m['rows']} rows) {m['list_s'] * 1000:.0f} ms; drill-down of one problem "
              f"({m['cells_opened']} cells parsed, a tree expanded) {m['drill_s'] * 1000:.0f} ms")
    print(f"ratio large/small: load {large['load_s'] / small['load_s']:.1f}x, drill-down "
          f"{large['drill_s'] / max(small['drill_s'], 1e-3):.1f}x for {a.problems * a.cells / 60:.0f}x the records")


if __name__ == "__main__":
    main()
