"""ProcessBench (Zheng et al., 2024, arXiv:2412.06559): find the first erroneous step.

Each item is a model-written solution, split into steps, with an expert label: the 0-based index
of the earliest wrong step, or -1 when every step is right. A reward model scores every step;
the predicted first error is the first step scored below the threshold (-1 if none is), and the
metrics (prmbench.step_eval.processbench_metrics) are ProcessBench's error_acc, correct_acc and
their harmonic mean f1, with bootstrap CIs, plus the threshold-free step-level AUROC.

Tasks: `processbench_gsm8k`, `processbench_math`, `processbench_olympiadbench`,
`processbench_omnimath` (one subset each) and `processbench` (all four; its `f1` is the mean of the
subsets' F1, the paper's "Avg. F1", each subset's full metrics under `subsets`).

Task arguments: `threshold` (default 0.5); `calibrate_on=SUBSET` picks the F1-best threshold on
that subset's solutions (loaded as well when the task does not include it) and applies it to the
task's other subsets; the calibration subset is then reported only under `calibration`, never as a
result. The F1 at the threshold that is best on the evaluated solutions themselves is an upper
bound and appears only as `f1_oracle_threshold`.

Data, first that applies: `data_file` (a subset task: that subset's file; `processbench`: a
folder holding gsm8k.json, math.json, ...); ``$PRMBENCH_DATA_DIR/processbench/<subset>.json``;
the Hugging Face dataset `Qwen/ProcessBench` (split = subset; not attempted offline). Files are
JSON arrays or JSONL(.gz) of rows {id, problem, steps, label, final_answer_correct, generator}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from prmbench.errors import ConfigError, DataError
from prmbench.step_eval import (DEFAULT_THRESHOLD, best_threshold, check_threshold, first_below, mean_f1_ci,
                                processbench_metrics)
from prmbench.step_task import StepItem, StepTask
from prmbench.tasks.step_data import Rows, field, hub_rows, read_rows, shared_path, string_list
from prmbench.types import RMOutput

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
SOURCE = "Qwen/ProcessBench"


def _fix(subset: str) -> str:
    return (f"Fix: pass the file with `--data-file TASK=PATH` (a ProcessBench JSON array or JSONL with id, problem, "
            f"steps, label), or set PRMBENCH_DATA_DIR to a folder holding processbench/{subset}.json.")


class ProcessBenchTask(StepTask):
    """ProcessBench over all four subsets (see the module docstring)."""

    domain = "math"
    version = "1"
    headline_metrics = ("f1", "auroc")
    subsets: ClassVar[tuple[str, ...]] = SUBSETS

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, calibrate_on: str | None = None,
                 data_file: str | None = None, source: str = SOURCE):
        self.threshold = check_threshold(threshold, self.task_label)
        if calibrate_on in ("", None):
            calibrate_on = None
        elif str(calibrate_on) not in SUBSETS:
            raise ConfigError(f"{self.task_label}: calibrate_on must be one of {', '.join(SUBSETS)} (got {calibrate_on!r})")
        elif self.subsets == (str(calibrate_on),):
            raise ConfigError(f"{self.task_label}: calibrate_on={calibrate_on} is the subset being evaluated; a threshold "
                              f"picked on the evaluated solutions is the oracle threshold (reported as "
                              f"f1_oracle_threshold). Calibrate on another subset, e.g. calibrate_on="
                              f"{next(s for s in SUBSETS if s != calibrate_on)}")
        self.calibrate_on = None if calibrate_on is None else str(calibrate_on)
        self.data_file = None if data_file in (None, "") else str(data_file)
        self.source = source

    @property
    def task_label(self) -> str:
        """The task's name for messages (the registry name once built)."""
        return getattr(self, "name", None) or ("processbench_" + self.subsets[0] if len(self.subsets) == 1 else "processbench")

    def config(self) -> dict[str, Any]:
        """Subsets, threshold rule and hub source (a local path is covered by the data fingerprint)."""
        return {"subsets": list(self.subsets), "threshold": self.threshold, "calibrate_on": self.calibrate_on,
                "source": self.source}

    # -- data ------------------------------------------------------------------------------------
    def _loaded_subsets(self) -> tuple[str, ...]:
        extra = (self.calibrate_on,) if self.calibrate_on and self.calibrate_on not in self.subsets else ()
        return (*self.subsets, *extra)

    def _rows(self, subset: str) -> Rows:
        if self.data_file is not None:
            p = Path(self.data_file).expanduser()
            if p.is_dir():
                p = p / f"{subset}.json"
            elif subset not in self.subsets:  # a one-subset file cannot hold the calibration subset
                local = shared_path(f"processbench/{subset}.json")
                if local is None:
                    raise DataError(f"{self.task_label}: calibrate_on={subset} needs the {subset} subset: set "
                                    f"PRMBENCH_DATA_DIR (processbench/{subset}.json) or pass a folder as --data-file")
                p = local
            if not p.is_file():
                raise DataError(f"{self.task_label}: data file {p} does not exist. {_fix(subset)}")
            return read_rows(p)
        local = shared_path(f"processbench/{subset}.json")
        if local is not None:
            return read_rows(local)
        return hub_rows(self.task_label, self.source, subset, _fix(subset))

    def read_items(self) -> list[StepItem]:
        """The labelled solutions of every loaded subset (validated row by row)."""
        items: list[StepItem] = []
        seen: dict[str, str] = {}
        for subset in self._loaded_subsets():
            rows = self._rows(subset)
            if not rows:
                raise DataError(f"{self.task_label}: the {subset} data is empty. {_fix(subset)}")
            for where, row in rows:
                item = self._item(where, row, subset)
                if item.id in seen:
                    raise DataError(f"{where}: duplicate id {item.id!r} (first at {seen[item.id]})")
                seen[item.id] = where
                items.append(item)
        return items

    @staticmethod
    def _item(where: str, row: Any, subset: str) -> StepItem:
        rid = field(where, row, "id", (str, int), "the solution's id, e.g. gsm8k-0")
        where = f"{where} (id {rid!r})"
        question = field(where, row, "problem", str, "the problem text")
        steps = string_list(where, row, "steps")
        label = field(where, row, "label", int, f"-1 (no wrong step) or the 0-based index of the first wrong step")
        if not -1 <= label < len(steps):
            raise DataError(f"{where}: field `label` must be -1 or a step index below {len(steps)} (the number of "
                            f"steps), got {label}")
        fac = row.get("final_answer_correct")
        if fac is not None and not isinstance(fac, bool):
            raise DataError(f"{where}: field `final_answer_correct` must be true or false, got {fac!r}")
        return StepItem(id=str(rid), question=question, steps=tuple(steps), subset=subset,
                        gold={"label": label, "final_answer_correct": fac, "generator": row.get("generator")})

    def select(self, items: Sequence[StepItem], limit: int | None) -> list[StepItem]:
        """`limit` solutions of each subset, taken alternately from its erroneous and its correct ones
        in file order (the files list every erroneous solution first), so both classes are present;
        the chosen items keep the data set's order."""
        if not limit:
            return list(items)
        chosen: set[str] = set()
        for subset in dict.fromkeys(it.subset for it in items):
            err = [it.id for it in items if it.subset == subset and int(it.gold["label"]) >= 0]
            cor = [it.id for it in items if it.subset == subset and int(it.gold["label"]) < 0]
            mixed = [x for pair in zip(err, cor) for x in pair] + err[len(cor):] + cor[len(err):]
            chosen.update(mixed[:limit])
        return [it for it in items if it.id in chosen]

    # -- records and metrics -----------------------------------------------------------------------
    def record(self, item: StepItem, output: RMOutput) -> dict[str, Any]:
        """label, predicted (at the configured threshold), final_answer_correct, generator."""
        return {"label": int(item.gold["label"]), "predicted": first_below(output.step_scores, self.threshold),
                "final_answer_correct": item.gold.get("final_answer_correct"), "generator": item.gold.get("generator")}

    def evaluate(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Per-subset ProcessBench metrics at the (possibly calibrated) threshold; see the module docstring."""
        threshold, source, calibration = self.threshold, "fixed (task argument threshold)", None
        if self.calibrate_on:
            cal = [r for r in records if r["subset"] == self.calibrate_on]
            if not cal:
                raise DataError(f"{self.task_label}: calibrate_on={self.calibrate_on} but no {self.calibrate_on} "
                                f"solution was scored")
            try:
                threshold, f1_in_sample = best_threshold(cal)
            except ValueError:
                raise DataError(f"{self.task_label}: calibrate_on={self.calibrate_on} needs both erroneous and correct "
                                f"{self.calibrate_on} solutions; raise --limit (it takes them alternately)") from None
            source = f"calibrated: the F1-best threshold on {self.calibrate_on}"
            calibration = {"subset": self.calibrate_on, "threshold": threshold, "n": len(cal),
                           "f1_in_sample": f1_in_sample}
        final = [{**r, "predicted": first_below(r["step_scores"], threshold)} for r in records]
        evaluated = [s for s in self.subsets if s != self.calibrate_on]
        per = {s: processbench_metrics([r for r in final if r["subset"] == s], threshold) for s in evaluated}
        per = {s: m for s, m in per.items() if m["n"]}
        if not per:
            return final, {"n": 0, "threshold": threshold, "threshold_source": source, "f1": None, "subsets": {}}
        if len(per) == 1:
            metrics = dict(next(iter(per.values())))
        else:
            pooled = processbench_metrics([r for r in final if r["subset"] in per], threshold, n_boot=1)
            f1s = [m["f1"] for m in per.values()]
            oracle = [m.get("f1_oracle_threshold") for m in per.values()]
            metrics = {"n": pooled["n"], "n_erroneous": pooled["n_erroneous"], "n_correct": pooled["n_correct"],
                       "threshold": threshold,
                       "f1": sum(f1s) / len(f1s) if None not in f1s else None,
                       "f1_ci": mean_f1_ci([[r for r in final if r["subset"] == s] for s in per], threshold),
                       "f1_definition": "mean of the subsets' F1 (ProcessBench's Avg. F1)",
                       "auroc": pooled["auroc"], "solution_auroc": pooled["solution_auroc"],
                       "n_truncated": pooled["n_truncated"],
                       "f1_oracle_threshold": sum(oracle) / len(oracle) if None not in oracle else None}
        metrics["threshold_source"] = source
        metrics["subsets"] = per
        if calibration is not None:
            metrics["calibration"] = calibration
        return final, metrics


def _subset_task(subset: str) -> type[ProcessBenchTask]:
    cls = type(f"ProcessBench_{subset}", (ProcessBenchTask,), {
        "subsets": (subset,), "__module__": __name__,
        "__doc__": f"ProcessBench, the {subset} subset only (see the module docstring)."})
    return cls


ProcessBenchGSM8K = _subset_task("gsm8k")
ProcessBenchMATH = _subset_task("math")
ProcessBenchOlympiadBench = _subset_task("olympiadbench")
ProcessBenchOmniMATH = _subset_task("omnimath")
