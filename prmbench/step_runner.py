"""Executing step-level cells (TASK--RM): batched, cached scoring of labelled solutions.

A step-level cell scores every item of a step-level task (prmbench.step_task) with one reward
model. Items are scored in chunks of `SCORE_CHUNK` solutions, across questions, through the
reward model's batched engine (`score_items` of the transformers families, see
prmbench.reward_models.hf_rm); scores are cached by content (reward model id, the task's step
delimiter, question, steps), so tasks that share solutions (`processbench` and
`processbench_math`) and a resumed run never score a solution twice. Each chunk's records are
appended to the cell's samples file and flushed at once, so an interrupted cell keeps every
finished chunk and `--resume` continues with the rest.

Cell folder (the same layout as search cells):

    cells/<TASK--RM>/samples.jsonl   one record per item: problem_id, task, rm, kind "step",
                                     subset, n_steps, step_scores, truncated, rm_tokens,
                                     rm_seconds (its share of the batch that scored it; from the
                                     cache: the original's), and the task's own fields
                                     (ProcessBench: label, predicted, ...)
    cells/<TASK--RM>/metrics.json    the task's metrics (`StepTask.evaluate`), kind "step",
                                     the cell identity, `complete`, mean_rm_tokens, rm_seconds

Only process reward models can score steps: an outcome reward model (kind "orm": the oracle,
exec_public, orm) is refused with the reason before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from prmbench.cache import Cache, cache_key
from prmbench.errors import ConfigError
from prmbench.interfaces import RewardModel
from prmbench.results import METRICS_FILE, SAMPLES_FILE, drop_torn_tail, read_jsonl, write_json_atomic
from prmbench.scoring import score_pairs
from prmbench.step_task import StepItem, StepTask
from prmbench.types import Problem, RMOutput

STEP_KIND = "step"
SEARCH_KIND = "search"
#: Solutions scored (and their records written) together.
SCORE_CHUNK = 64


@dataclass(frozen=True)
class StepCell:
    """One step-level cell: a task scored by a reward model."""

    task: str
    rm: str

    @property
    def id(self) -> str:
        """`TASK--RM`, file-system safe."""
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", f"{self.task}--{self.rm}")

    def to_json(self) -> dict[str, Any]:
        """The cell's entry in run.json."""
        return {"id": self.id, "kind": STEP_KIND, "task": self.task, "rm": self.rm}


def check_step_rm(rm: RewardModel, rm_name: str, task_name: str) -> None:
    """Refuse a reward model that cannot score steps (an outcome RM), with the reason."""
    kind = getattr(rm, "kind", "prm")
    if kind != "prm":
        raise ConfigError(f"reward model {rm_name!r} is an outcome reward model (kind {kind!r}: one score per "
                          f"solution), so it cannot locate an erroneous step; step-level task {task_name!r} needs a "
                          f"process reward model (e.g. random, math_prm, qwen_prm:DIR). Drop it from --rm (to use it on search "
                          f"tasks, run them with it in a separate run)")


def _public_problem(task: StepTask, question: str) -> Problem:
    """What a reward model sees of an item: the question (its id a hash of the text), no labels."""
    qid = "q-" + hashlib.sha256(question.encode()).hexdigest()[:16]
    return Problem(id=qid, task=task.name, question=question)


def _score_key(task: StepTask, rm_id: str, item: StepItem) -> str:
    return cache_key("rm-steps", rm_id, task.step_delimiter, item.question, list(item.steps))


def iter_step_chunks(task: StepTask, rm: RewardModel, items: Sequence[StepItem], cache: Cache | None = None,
                     chunk_size: int = SCORE_CHUNK) -> Iterator[list[dict[str, Any]]]:
    """Records of `items`, chunk by chunk in item order: cached scores, the rest in one batched call per chunk."""
    cache = cache if cache is not None else Cache(None)
    rm_id = rm.cache_id()
    for start in range(0, len(items), chunk_size):
        chunk = items[start:start + chunk_size]
        keys = [_score_key(task, rm_id, it) for it in chunk]
        found = cache.get_many(keys)
        todo = {k: it for k, it in zip(keys, chunk) if k not in found}
        if todo:
            outs = score_pairs(rm, task, [(_public_problem(task, it.question), list(it.steps)) for it in todo.values()])
            if len(outs) != len(todo):
                raise RuntimeError(f"reward model {rm.name!r} returned {len(outs)} outputs for {len(todo)} solutions")
            fresh = {k: o.to_json() for k, o in zip(todo, outs)}
            cache.put_many(fresh)
            found.update(fresh)
        yield [_record(task, rm, it, RMOutput.from_json(found[k])) for k, it in zip(keys, chunk)]


def score_step_items(task: StepTask, rm: RewardModel, items: Sequence[StepItem], cache: Cache | None = None,
                     chunk_size: int = SCORE_CHUNK) -> list[dict[str, Any]]:
    """Every item's record (see `iter_step_chunks`)."""
    return [r for chunk in iter_step_chunks(task, rm, items, cache, chunk_size) for r in chunk]


def _record(task: StepTask, rm: RewardModel, item: StepItem, out: RMOutput) -> dict[str, Any]:
    truncated = bool(out.truncated) or len(out.step_scores) < len(item.steps)
    if truncated and not out.truncated:
        out = RMOutput(out.step_scores, out.tokens, out.seconds, True)
    return {"problem_id": item.id, "task": task.name, "rm": rm.name, "kind": STEP_KIND, "subset": item.subset,
            "n_steps": len(item.steps), "step_scores": [float(s) for s in out.step_scores], "truncated": truncated,
            "rm_tokens": out.tokens, "rm_seconds": out.seconds, **task.record(item, out)}


@dataclass(frozen=True)
class StepPlan:
    """The step-level part of a run: its tasks, the items each evaluates, their run.json entries, its cells."""

    tasks: Mapping[str, StepTask]
    items: Mapping[str, Sequence[StepItem]]
    info: Mapping[str, Mapping[str, Any]]
    cells: Sequence[StepCell]


def plan_step_cells(tasks: Mapping[str, StepTask], rms: Mapping[str, RewardModel], limit: int | None) -> StepPlan:
    """Check every (task, reward model) pair (outcome RMs are refused), load the items, list the cells."""
    for t in tasks:
        for name, rm in rms.items():
            check_step_rm(rm, name, t)
    items, info = {}, {}
    for name, task in tasks.items():
        every = task.load_items()
        if not every:
            raise ConfigError(f"step-level task {name!r} loaded no labelled solution; check its data file")
        items[name] = task.select(every, limit)
        info[name] = task_info(task, items[name], len(every))
    cells = [StepCell(t, r) for t in tasks for r in rms]
    return StepPlan(tasks=dict(tasks), items=items, info=info, cells=cells)


def task_info(task: StepTask, items: Sequence[StepItem], n_available: int) -> dict[str, Any]:
    """The task's entry in run.json (version, data fingerprint, sizes, identity, kind)."""
    return {"version": task.version, "data_fingerprint": task.data_fingerprint(), "n_problems": len(items),
            "n_available": n_available, "restricted_to_policy": False, "identity": task.identity(), "kind": STEP_KIND}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def _read_done(path: Path) -> list[dict[str, Any]]:
    """Records already written (a torn last line, left by a crash, is cut off the file)."""
    if not path.exists():
        return []
    drop_torn_tail(path)
    return list(read_jsonl(path))


def _rewrite(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write("".join(_dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_step_cell(cell_dir: Path, cell: StepCell, task: StepTask, rm: RewardModel, items: Sequence[StepItem],
                  cache: Cache, progress: Callable[[int, str], Any] | None = None,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score the cell's missing items into `cell_dir` and write its metrics; returns the metrics."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    samples = cell_dir / SAMPLES_FILE
    order = {it.id: i for i, it in enumerate(items)}
    done = {r["problem_id"] for r in _read_done(samples) if r.get("problem_id") in order}
    todo = [it for it in items if it.id not in done]
    bar = progress(len(items), cell.id) if progress else None
    if bar is not None:
        bar.update(len(items) - len(todo))
    with open(samples, "a") as f:
        for chunk in iter_step_chunks(task, rm, todo, cache):
            f.write("".join(_dumps(r) + "\n" for r in chunk))
            f.flush()
            os.fsync(f.fileno())
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return finish_step_cell(cell_dir, cell, task, items, log)


def finish_step_cell(cell_dir: Path, cell: StepCell, task: StepTask, items: Sequence[StepItem],
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate the records written in `cell_dir` (in item order; a threshold calibrated on them
    rewrites their predictions) and write the cell's metrics; returns them."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    samples = cell_dir / SAMPLES_FILE
    order = {it.id: i for i, it in enumerate(items)}
    records = [r for r in _read_done(samples) if r.get("problem_id") in order]
    records.sort(key=lambda r: order[r["problem_id"]])
    final, metrics = task.evaluate(records)
    if final != records:  # predictions at a threshold calibrated on the records themselves
        _rewrite(samples, final)
    metrics = {**metrics, "kind": STEP_KIND, "cell": cell.to_json(), "complete": len(final) == len(items),
               "mean_rm_tokens": sum(r["rm_tokens"] for r in final) / len(final) if final else None,
               "rm_seconds": sum(float(r.get("rm_seconds") or 0) for r in final)}
    write_json_atomic(cell_dir / METRICS_FILE, metrics)
    if log is not None:
        log(f"{cell.id}: {headline(metrics, task.headline_metrics)} on {len(final)} items"
            + (f" ({metrics['n_truncated']} truncated)" if metrics.get("n_truncated") else ""))
    return metrics


def headline(metrics: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The cell's main numbers in words, e.g. 'f1 0.412, auroc 0.530'."""
    parts = [f"{k} {metrics[k]:.3f}" for k in keys if isinstance(metrics.get(k), (int, float))]
    return ", ".join(parts) or "no metrics"
