"""The lab's step-level evaluation: each PRM locates the first wrong step of held-out solutions.

Held-out solutions are labelled like the training ones (`prmbench.labels.labelling.LabelJob`, both
annotators) but on ``test``-split problems, which no PRM trained on. Each reward model scores
every solution's steps through its ordinary `score` (public view of the problem); the records
(``label`` = the Monte Carlo first error, -1 for none; ``step_scores``) are scored with
`prmbench.step_eval.processbench_metrics` at threshold 0.5 (ProcessBench's error/correct
accuracies, their F1 and step AUROC).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from prmbench.step_eval import processbench_metrics
from prmbench.types import Problem

THRESHOLD = 0.5


def score_labelled(registry: Any, task_name: str, task_args: Mapping[str, Any], rm_spec: str,
                   labels_path: Path) -> list[dict[str, Any]]:
    """ProcessBench-style records of `rm_spec` on every labelled solution of `labels_path`."""
    task = registry.build("task", task_name, dict(task_args))
    rm = registry.build("rm", rm_spec)
    records = []
    try:
        for line in labels_path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            problem = Problem(id=row["problem_id"], task=task_name, question=row["question"])
            [out] = rm.score(task, problem, [list(row["steps"])])
            fe = row.get("first_error")
            records.append({"problem_id": row["problem_id"], "label": -1 if fe is None else int(fe),
                            "step_scores": list(out.step_scores), "truncated": bool(out.truncated)})
    finally:
        rm.close()
        task.close()
    return records


def evaluate(registry: Any, task_name: str, task_args: Mapping[str, Any], rm_specs: Mapping[str, str],
             labels_path: Path, out_dir: Path) -> dict[str, Any]:
    """Metrics per reward model (name -> metrics); records in ``out_dir/<task>--<name>.jsonl``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {}
    for name, spec in rm_specs.items():
        records = score_labelled(registry, task_name, task_args, spec, labels_path)
        (out_dir / f"{task_name}--{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        metrics[name] = processbench_metrics(records, THRESHOLD, n_boot=200) if records else {"n": 0}
    return metrics
