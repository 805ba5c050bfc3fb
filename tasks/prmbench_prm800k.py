"""PRMBench (Song et al., 2025, arXiv:2501.03124): fine-grained error detection on PRM800K solutions.

Each item is a PRM800K solution into which GPT-4o injected one kind of error (nine classes:
redundency, circular, counterfactual, step_contradiction, domain_inconsistency, confidence,
missing_condition, deception, multi_solutions), with the 1-based indices of the erroneous steps.
The benchmark adds the unmodified solutions as class `correct` (the `original_process` of the
redundency files, with no error step). A reward model scores every step; a step is predicted
*valid* when its score is above the threshold (0.5, PRMBench's `validity_threshold`).

PRMScore, as implemented here (prmbench.step_eval.step_confusion / prmscore):

    PRMScore = w1 * F1_neg + w2 * F1,   w1 = w2 = 0.5

where F1 is the F1 score of the correct steps (positive class: TP = correct step predicted
valid, FP = erroneous step predicted valid, FN = correct step predicted invalid) and F1_neg the
F1 score of the erroneous steps (TN = erroneous step predicted invalid). That is the paper's
formula (a weighted sum of the negative and the positive F1 with equal weights; a random guesser
scores about 50 on it) and the benchmark's code (ssmisya/PRMBench
@ a1ae4ea: `mr_eval/tasks/prmtest_classified/task.py` computes the confusion counts,
`mr_visualize/.../draw_radar.ipynb` the weighted sum), whose details are followed exactly:

- the overall `prmscore` pools the confusion counts of every error-injected item (all nine
  classes, multi_solutions included); the `correct` items are scored and reported under
  `classes.correct` only, not in the pooled counts;
- a class's PRMScore is computed from that class's pooled counts; multi_solutions (and correct)
  have no erroneous step, so their PRMScore is their F1 alone, as the benchmark reports it;
- `prmscore_simplicity` / `_soundness` / `_sensitivity` are the means of their classes' PRMScores
  (NR+NCL; ES+SC+DC+CI; PS+DR+MS: the paper's three dimensions), `prmscore_class_mean` over all
  nine;
- an error index beyond the last step (a few rows of the data, e.g. [16, 34] for 33 steps) labels
  no step, as in the benchmark, which only visits existing steps;
- items are read from the 25 files in name order (the benchmark uses `os.listdir` order); an
  `(idx, classification)` pair seen twice keeps its first row (5 such pairs).

Only scored steps count (a truncated solution contributes its leading steps; `n_truncated` says how
many were cut). `--limit K` takes the first K items of each class. Data: `data_file` (a folder of the *.jsonl.gz files, or one file), else
``$PRMBENCH_DATA_DIR/prmbench_prm800k/prmbench/``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from prmbench.errors import DataError
from prmbench.step_eval import DEFAULT_THRESHOLD, check_threshold, prmscore, step_confusion
from prmbench.step_task import StepItem, StepTask
from prmbench.tasks.step_data import field, read_rows, shared_path, string_list
from prmbench.types import RMOutput

CORRECT = "correct"
CORRECT_SOURCE = "redundency"  # the benchmark's spelling
NO_ERROR_CLASSES = ("multi_solutions", CORRECT)
DIMENSIONS = {
    "simplicity": ("redundency", "circular"),
    "soundness": ("counterfactual", "step_contradiction", "domain_inconsistency", "confidence"),
    "sensitivity": ("missing_condition", "deception", "multi_solutions"),
}
CLASSES = tuple(c for group in DIMENSIONS.values() for c in group)
FIX = ("Fix: set PRMBENCH_DATA_DIR to the shared data folder (prmbench_prm800k/prmbench/*.jsonl.gz), or pass the "
       "PRMBench files with `--data-file prmbench_prm800k=DIR`.")


class PRMBenchTask(StepTask):
    """PRMBench on its PRM800K items, scored by PRMScore (see the module docstring)."""

    domain = "math"
    version = "1"
    headline_metrics = ("prmscore",)

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, data_file: str | None = None):
        self.threshold = check_threshold(threshold, "prmbench_prm800k")
        self.data_file = None if data_file in (None, "") else str(data_file)

    def config(self) -> dict[str, Any]:
        """The validity threshold."""
        return {"threshold": self.threshold}

    def _files(self) -> list[Path]:
        root = Path(self.data_file).expanduser() if self.data_file else shared_path("prmbench_prm800k/prmbench")
        if root is None or not root.exists():
            raise DataError(f"prmbench_prm800k: data {'folder ' + str(root) + ' does not exist' if root else 'not found'}. {FIX}")
        files = sorted(p for p in root.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz"))) if root.is_dir() else [root]
        if not files:
            raise DataError(f"prmbench_prm800k: {root} holds no .jsonl or .jsonl.gz file. {FIX}")
        return files

    def read_items(self) -> list[StepItem]:
        """The benchmark's items: each row's modified solution, plus `correct_<idx>` originals (see module docstring)."""
        items: list[StepItem] = []
        seen: set[str] = set()
        for path in self._files():
            for where, row in read_rows(path):
                idx = field(where, row, "idx", str, "the item id, e.g. prm_test_p1_0")
                where = f"{where} (idx {idx!r})"
                cls = field(where, row, "classification", str, "the error class, e.g. confidence")
                if cls == CORRECT_SOURCE and f"{CORRECT}_{idx}" not in seen:
                    seen.add(f"{CORRECT}_{idx}")
                    items.append(StepItem(id=f"{CORRECT}_{idx}", subset=CORRECT,
                                          question=field(where, row, "original_question", str, "the question text"),
                                          steps=tuple(string_list(where, row, "original_process")),
                                          gold={"error_steps": []}))
                if f"{cls}_{idx}" in seen:
                    continue
                steps = string_list(where, row, "modified_process")
                errors = field(where, row, "error_steps", list, "the 1-based indices of the erroneous steps")
                if not all(isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in errors):
                    raise DataError(f"{where}: field `error_steps` must hold 1-based step indices (integers >= 1), "
                                    f"got {errors}")
                seen.add(f"{cls}_{idx}")
                items.append(StepItem(id=f"{cls}_{idx}", subset=cls, steps=tuple(steps),
                                      question=field(where, row, "modified_question", str, "the question text"),
                                      gold={"error_steps": sorted(errors)}))
        return items

    def select(self, items: Sequence[StepItem], limit: int | None) -> list[StepItem]:
        """The first `limit` items of each class (correct included), in the data's order."""
        if not limit:
            return list(items)
        taken: Counter[str] = Counter()
        out = []
        for it in items:
            if taken[it.subset] < limit:
                taken[it.subset] += 1
                out.append(it)
        return out

    def record(self, item: StepItem, output: RMOutput) -> dict[str, Any]:
        """classification, error_steps (1-based) and the item's confusion counts at the threshold."""
        return {"classification": item.subset, "error_steps": list(item.gold["error_steps"]),
                **step_confusion(item.gold["error_steps"], output.step_scores, self.threshold)}

    def evaluate(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Overall and per-class PRMScore from the records' confusion counts (see the module docstring)."""
        final = [{**r, **step_confusion(r["error_steps"], r["step_scores"], self.threshold)} for r in records]
        keys = ("TP", "FP", "TN", "FN")

        def pooled(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
            return {k: sum(int(r[k]) for r in rows) for k in keys}

        classes: dict[str, Any] = {}
        for cls in dict.fromkeys([*CLASSES, CORRECT, *(r["classification"] for r in final)]):
            rows = [r for r in final if r["classification"] == cls]
            if not rows:
                continue
            conf = pooled(rows)
            scores = prmscore(conf)
            if cls in NO_ERROR_CLASSES:
                scores["prmscore"] = scores["f1"]
            classes[cls] = {"n": len(rows), **conf, **scores}
        injected = [r for r in final if r["classification"] != CORRECT]
        total = pooled(injected)
        metrics: dict[str, Any] = {"n": len(final), "n_error_injected": len(injected), "threshold": self.threshold,
                                   **prmscore(total), **total}
        for dim, members in DIMENSIONS.items():
            vals = [classes[c]["prmscore"] for c in members if c in classes and classes[c]["prmscore"] is not None]
            metrics[f"prmscore_{dim}"] = sum(vals) / len(vals) if vals else None
        vals = [classes[c]["prmscore"] for c in CLASSES if c in classes and classes[c]["prmscore"] is not None]
        metrics["prmscore_class_mean"] = sum(vals) / len(vals) if vals else None
        metrics["n_truncated"] = sum(bool(r.get("truncated")) for r in final)
        metrics["classes"] = classes
        return final, metrics
