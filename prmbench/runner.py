"""The runner: expands the (task x reward model x strategy x budget) matrix and executes it.

One policy serves the whole run. For each task, the samples that pool strategies (best-of-N,
majority vote, ...) draw are generated once, as one pool of the largest size any cell needs, and
shared by every budget and strategy through the cache; scores are cached per (reward model,
problem, steps). The work is cut into units (prmbench.units: a task's chunk of problems with
every cell that lacks them) that an executor solves (prmbench.executors): the local executor runs
each task as one unit in this process, the Ray executor runs chunks on Ray actors. Either way up
to `concurrency` problems of a cell are searched at once, their generation and scoring requests
coalesced into shared backend calls (prmbench.scheduler), and the records are the same. The runner
alone writes the run folder: each cell's records in problem order, a graded chunk (locally
`GRADE_CHUNK` problems, on Ray a unit) at a time; an interrupted run keeps every written record
and, through the cache, every generation and score of the searches in flight, and `resume=True`
continues where it stopped, on either executor.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from prmbench import __version__
from prmbench.budgets import definition
from prmbench.cache import Cache
from prmbench.config import ExecutorConfig, RunConfig, RunSpec, parse_budgets, split_list  # noqa: F401 (re-exported)
from prmbench.errors import ConfigError
from prmbench.interfaces import Strategy
from prmbench.metrics import cell_metrics
from prmbench.provenance import provenance
from prmbench.registry import Registry
from prmbench.resume import check_resume, config_difference
from prmbench.step_runner import SEARCH_KIND, StepPlan, finish_step_cell, plan_step_cells
from prmbench.step_task import is_step_task
from prmbench.results import (CACHE_FILE, CELLS_DIR, METRICS_FILE, RUN_FILE, SAMPLES_FILE, SCHEMA_VERSION, drop_torn_tail,
                              TREES_FILE, read_jsonl, write_json_atomic)
from prmbench.types import Problem
from prmbench.units import (NO_RM, SEARCH_UNIT, STEP_UNIT, Cell, CellOutput, Components,  # noqa: F401 (re-exported)
                            Unit, UnitSolver, _NoRM, build_components, check_search_flags, make_units)

LOGS_DIR = "logs"
"""Run-folder subfolder for the logs of servers the run starts (`--policy vllm:MODEL` and the like)."""


def expand_cells(spec: RunSpec, strategies: Mapping[str, Strategy]) -> list[Cell]:
    """The cross product; strategies that use no reward model get one cell with rm 'none'."""
    cells: list[Cell] = []
    seen: set[Cell] = set()
    for t in spec.tasks:
        for s in spec.strategies:
            rms = spec.rms if strategies[s].uses_rm else (NO_RM,)
            for r in rms:
                for b in spec.budgets:
                    c = Cell(t, r, s, b, spec.budget_unit)
                    if c not in seen:
                        seen.add(c)
                        cells.append(c)
    return cells


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True, file=sys.stderr)


def check_compatible(spec: RunSpec, policy: Any, strategies: Mapping[str, Strategy]) -> None:
    """Refuse strategy/policy/unit combinations that cannot run or cannot be compute-matched."""
    stepwise = [n for n, st in strategies.items() if st.stepwise]
    if stepwise and not policy.supports_stepwise:
        raise ConfigError(f"strategy {', '.join(stepwise)} generates step by step, but policy {policy.name!r} serves "
                          f"only whole stored solutions; use a live policy (hf:MODEL) or drop them from --strategy")
    if spec.budget_unit == "flops" and not policy.num_parameters:
        raise ConfigError(f"--budget-unit flops caps FLOPs = 2 x parameters x tokens, but policy {policy.name!r} "
                          f"reports no parameter count, so its generations cost 0 FLOPs and no search would stop; "
                          f"give it (e.g. --policy-args num_parameters=1500000000) or use --budget-unit tokens")
    if spec.budget_unit == "seconds" and not policy.measures_seconds:
        raise ConfigError(f"--budget-unit seconds caps measured model-call seconds, but policy {policy.name!r} "
                          f"serves stored generations that take no time, so no search would stop; use "
                          f"--budget-unit tokens (or flops with --policy-args num_parameters=...) or a live policy")
    unmatched = [n for n, st in strategies.items() if not st.uses_pool]
    if spec.budget_unit == "n" and unmatched and not policy.num_parameters:
        raise ConfigError(f"compute-matched budgets (--budget-unit n) need the policy's parameter count, but policy "
                          f"{policy.name!r} reports none, so strategy {', '.join(unmatched)} cannot be matched to "
                          f"best-of-N; give it (e.g. --policy-args num_parameters=...) or use --budget-unit "
                          f"nominal|tokens")


def prepare_output(output: Path, spec: RunSpec, resume: bool) -> dict[str, Any] | None:
    """Check the output folder: new, or (with resume) the same config. Returns the old run.json."""
    run_file = output / RUN_FILE
    if run_file.exists():
        import json

        old = json.loads(run_file.read_text())
        if not resume:
            raise ConfigError(f"{output} already holds a run; pass --resume to continue it, "
                              f"or choose a new --output folder")
        if old.get("config_hash") != spec.hash():
            raise ConfigError(f"{output} holds a run with a different configuration{config_difference(old, spec)}; "
                              f"--resume needs exactly the same flags, or choose a new --output")
        return old  # type: ignore[no-any-return]
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write to output folder {output}: {e.strerror or e}. "
                          f"Choose a writable --output folder") from e
    return None


class CellFiles:
    """The driver's side of the cells' files: what each cell already holds, appending outputs
    (search trees first, then records, each cell's chunk in one write and fsync, so a record never
    lacks its tree and a crash leaves at most a torn last line), and the cells' metrics."""

    def __init__(self, cells_dir: Path):
        self.cells_dir = cells_dir

    def done(self, cell_id: str) -> set[str]:
        """Ids of the problems (items) the cell's samples file holds; a torn last line is cut off."""
        path = self.cells_dir / cell_id / SAMPLES_FILE
        if not path.exists():
            return set()
        drop_torn_tail(path)
        return {r["problem_id"] for r in read_jsonl(path)}

    def append(self, out: CellOutput) -> None:
        """Append one output to its cell's files."""
        cell_dir = self.cells_dir / out.cell_id
        cell_dir.mkdir(parents=True, exist_ok=True)
        if out.trees:  # beside samples.jsonl; written first (readers keep a problem's last tree row)
            with open(cell_dir / TREES_FILE, "a") as f:
                f.write("".join(_dumps(t) + "\n" for t in out.trees))
        if out.records:
            with open(cell_dir / SAMPLES_FILE, "a") as f:
                f.write("".join(_dumps(r) + "\n" for r in out.records))
                f.flush()
                os.fsync(f.fileno())

    def finish_search_cell(self, cell: Cell, problems: Sequence[Problem], policy: str,
                           log: Callable[[str], None]) -> None:
        """Write a search cell's metrics over its records (in problem order)."""
        cell_dir = self.cells_dir / cell.id
        cell_dir.mkdir(parents=True, exist_ok=True)
        path = cell_dir / SAMPLES_FILE
        order = {p.id: i for i, p in enumerate(problems)}
        records = list(read_jsonl(path)) if path.exists() else []
        records = sorted((r for r in records if r["problem_id"] in order), key=lambda r: order[r["problem_id"]])
        metrics = cell_metrics(records)
        metrics["kind"] = SEARCH_KIND
        metrics["cell"] = {"id": cell.id, "kind": SEARCH_KIND, "task": cell.task, "rm": cell.rm,
                           "strategy": cell.strategy, "budget": cell.budget, "policy": policy}
        metrics["complete"] = len(records) == len(problems)
        write_json_atomic(cell_dir / METRICS_FILE, metrics)
        acc = metrics.get("accuracy")
        log(f"{cell.id}: accuracy {acc:.3f} on {metrics['n']} problems" if acc is not None else f"{cell.id}: no records")


@dataclass
class _TaskWork:
    """One task's part of the run: its cells, its items, its units still to deliver."""

    name: str
    kind: str  # SEARCH_UNIT | STEP_UNIT
    items: Sequence[Any]
    cells: Sequence[Any]
    units: list[Unit] = field(default_factory=list)
    left: int = 0


class Runner:
    """Executes a RunSpec into a run directory, on the local or the Ray executor."""

    progress_enabled: ClassVar[Callable[[], bool]] = staticmethod(lambda: sys.stderr.isatty())

    def __init__(self, spec: RunSpec, registry: Registry, output: Path, resume: bool = False,
                 log: Callable[[str], None] | None = None, concurrency: int | None = None,
                 executor: ExecutorConfig | None = None):
        spec.validate()
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ConfigError(f"--concurrency must be a positive integer (got {concurrency!r})")
        self.executor_config = executor or ExecutorConfig()
        self.executor_config.validate()
        self.requested_concurrency = concurrency
        self.concurrency = concurrency or 1
        self.spec = spec
        self.registry = registry
        self.output = Path(output)
        self.resume = resume
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.show_progress = Runner.progress_enabled()

    def _progress(self, total: int, desc: str) -> Any:
        return _progress(total, desc, self.show_progress)

    def _load_problems(self, tasks: Mapping[str, Any], policy: Any) -> tuple[dict[str, list[Problem]], dict[str, Any]]:
        """Each task's problems: those the policy can serve (a replay file's), then --limit."""
        problems, info = {}, {}
        servable = policy.available_problem_ids()
        for name, task in tasks.items():
            all_problems = task.load()
            if not all_problems:
                raise ConfigError(f"task {name!r} loaded no problems; check its data file")
            chosen = all_problems
            if servable is not None:
                chosen = [p for p in all_problems if p.id in servable]
                if not chosen:
                    raise ConfigError(f"policy {policy.name!r} holds none of task {name!r}'s problems "
                                      f"(ids like {all_problems[0].id!r}); was it made for another task?")
                if len(chosen) < len(all_problems):
                    self.log(f"{name}: policy {policy.name} covers {len(chosen)} of {len(all_problems)} problems; running those")
            chosen = chosen[: self.spec.limit] if self.spec.limit else chosen
            problems[name] = chosen
            info[name] = {"version": task.version, "data_fingerprint": task.data_fingerprint(all_problems),
                          "n_problems": len(chosen), "n_available": len(all_problems),
                          "restricted_to_policy": servable is not None and len(chosen) < len(all_problems),
                          "identity": task.identity()}
        return problems, info

    # -- execution --------------------------------------------------------------------------
    def run(self) -> Path:
        """Run every cell; returns the run directory."""
        old = prepare_output(self.output, self.spec, self.resume)
        on_ray = self.executor_config.executor == "ray"
        comps = build_components(self.spec, self.registry, with_policy=not on_ray, log_dir=self.output / LOGS_DIR)
        executor: Any = None
        run: dict[str, Any] = {}
        try:
            steps = plan_step_cells({n: t for n, t in comps.tasks.items() if is_step_task(t)}, comps.rms, self.spec.limit)
            search_tasks = {n: t for n, t in comps.tasks.items() if n not in steps.tasks}
            if on_ray:
                from prmbench.executors.ray_executor import RayExecutor

                executor = RayExecutor(self.executor_config, self.spec, self.output / CACHE_FILE, log=self.log)
                executor.start()
            policy: Any = comps.policy
            if search_tasks and on_ray:
                policy = executor.ask("policy_facts")
            problems: dict[str, list[Problem]] = {}
            task_info: dict[str, Any] = {}
            if policy is not None:
                check_compatible(self.spec, policy, comps.strategies)
                self.concurrency = self.requested_concurrency or policy.default_concurrency
                problems, task_info = self._load_problems(search_tasks, policy)
            cells = [c for c in expand_cells(self.spec, comps.strategies) if c.task in search_tasks]
            run = self._run_json(old, comps, policy, task_info, steps, cells)
            run["executor"] = {"executor": "local"} if executor is None else executor.describe(self.concurrency)
            if old is not None:  # same flags (prepare_output); also the same data, models and prmbench
                check_resume(self.output, old, run)
            write_json_atomic(self.output / RUN_FILE, run)
            if executor is None:
                from prmbench.executors import LocalExecutor

                cache = Cache(self.output / CACHE_FILE)
                executor = LocalExecutor(UnitSolver(self.spec, comps, cache, self.concurrency, self._progress, self.log),
                                         cache)
            self._execute(executor, problems, steps, cells, comps)
        except BaseException as e:  # Ctrl-C or a crash: say so in run.json; finished records are on disk
            if run:
                run["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}"
                write_json_atomic(self.output / RUN_FILE, run)
            raise
        finally:
            try:
                if executor is not None:
                    executor.close()
            finally:
                comps.close()
        run["status"] = "complete"
        run["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        write_json_atomic(self.output / RUN_FILE, run)
        return self.output

    def _run_json(self, old: Mapping[str, Any] | None, comps: Components, policy: Any, task_info: Mapping[str, Any],
                  steps: StepPlan, cells: Sequence[Cell]) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "prmbench_version": __version__,
            "created": (old or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "status": "running",
            "config": self.spec.to_json(),
            "config_hash": self.spec.hash(),
            "seed": self.spec.seed,
            "budget_unit": self.spec.budget_unit,
            "budget_definition": definition(self.spec.budget_unit),
            "concurrency": self.concurrency,  # how it ran, not what it computed: records are the same at any K
            **provenance(),
            "plugins": self.registry.plugins,
            "components": {
                "policy": {**policy.identity(), "num_parameters": policy.num_parameters} if policy else None,
                "rms": {n: {**r.identity(), "num_parameters": r.num_parameters} for n, r in comps.rms.items()},
                "strategies": {n: st.identity() for n, st in comps.strategies.items()},
            },
            "tasks": {**task_info, **steps.info},
            "cells": [{"id": c.id, "kind": SEARCH_KIND, "task": c.task, "rm": c.rm, "strategy": c.strategy,
                       "budget": c.budget, "budget_unit": c.unit, "policy": self.spec.policy} for c in cells]
                     + [c.to_json() for c in steps.cells],
        }

    def _execute(self, executor: Any, problems: Mapping[str, Sequence[Problem]], steps: StepPlan,
                 cells: Sequence[Cell], comps: Components) -> None:
        """Cut every task into units (one per task locally, `unit_size` problems on Ray), have the
        executor solve them, append their outputs in problem order, and write each task's cell
        metrics once its last unit is in."""
        files = CellFiles(self.output / CELLS_DIR)
        work: dict[str, _TaskWork] = {}
        for name in comps.tasks:
            if name in steps.tasks:
                w = _TaskWork(name, STEP_UNIT, steps.items[name], [c for c in steps.cells if c.task == name])
            else:
                w = _TaskWork(name, SEARCH_UNIT, problems[name], [c for c in cells if c.task == name])
            w.units = make_units(w.kind, name, w.items, w.cells, {c.id: files.done(c.id) for c in w.cells},
                                 executor.unit_size(self.concurrency, w.kind))
            w.left = len(w.units)
            work[name] = w
        bars = {n: self._progress(sum(len(t.ids) for u in w.units for t in u.todo), f"{n}: records")
                for n, w in work.items()}

        def finish(w: _TaskWork) -> None:
            bars[w.name].close()
            for c in w.cells:
                if w.kind == STEP_UNIT:
                    finish_step_cell(files.cells_dir / c.id, c, steps.tasks[w.name], w.items, self.log)
                else:
                    files.finish_search_cell(c, w.items, self.spec.policy, self.log)

        def emit(unit: Unit, out: CellOutput) -> None:
            files.append(out)
            bars[unit.task].update(len(out.records))

        def unit_done(unit: Unit) -> None:
            w = work[unit.task]
            w.left -= 1
            if not w.left:
                finish(w)

        for w in work.values():
            if not w.units:
                finish(w)
        executor.execute([u for w in work.values() for u in w.units], self.concurrency, emit, unit_done)

def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def run(spec: RunConfig, registry: Registry, output: str | Path, resume: bool = False,
        concurrency: int | None = None, executor: ExecutorConfig | None = None) -> Path:
    """Python API: execute `spec` into `output` (see Runner)."""
    return Runner(spec, registry, Path(output), resume=resume, concurrency=concurrency, executor=executor).run()
