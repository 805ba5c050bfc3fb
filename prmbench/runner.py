"""The runner: expands the (task x reward model x strategy x budget) matrix and executes it.

One policy serves the whole run. For each task, the samples that pool strategies (best-of-N,
majority vote, ...) draw are generated once, as one pool of the largest size any cell needs, and
shared by every budget and strategy through the cache; scores are cached per (reward model,
problem, steps). Up to `concurrency` problems of a cell are searched at once, their generation
and scoring requests coalesced into shared backend calls (prmbench.scheduler; records are the
same at every concurrency). Finished problems are graded in problem order, `GRADE_CHUNK` at a
time (in parallel on a code task's sandbox slots), and appended to the cell's samples file at
once; an interrupted run keeps every written record and, through the cache, every generation and
score of the searches in flight, and `resume=True` continues where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

from prmbench import __version__
from prmbench.budgets import definition, make_budget, measure_allowance, needs_allowance
from prmbench.cache import Cache
from prmbench.config import RunConfig, RunSpec, parse_budgets, split_list  # noqa: F401 (re-exported)
from prmbench.context import ModelCalls, SearchContext
from prmbench.errors import ConfigError
from prmbench.interfaces import Policy, RewardModel, Strategy, Task
from prmbench.metrics import cell_metrics
from prmbench.provenance import provenance
from prmbench.registry import Registry
from prmbench.scheduler import CoalescedCalls, Scheduler
from prmbench.resume import check_resume, config_difference
from prmbench.step_runner import SEARCH_KIND, plan_step_cells, run_step_cells
from prmbench.step_task import is_step_task
from prmbench.results import (CACHE_FILE, CELLS_DIR, METRICS_FILE, RUN_FILE, SAMPLES_FILE, SCHEMA_VERSION, drop_torn_tail,
                              TREES_FILE, read_jsonl, write_json_atomic)
from prmbench.types import Budget, Grade, Problem, Record, RMOutput, SearchResult

NO_RM = "none"
LOGS_DIR = "logs"
"""Run-folder subfolder for the logs of servers the run starts (`--policy vllm:MODEL` and the like)."""


#: Problems searched before their chosen solutions are graded together (and their records written).
GRADE_CHUNK = 8

@dataclass(frozen=True)
class Cell:
    """One point of the matrix."""

    task: str
    rm: str
    strategy: str
    budget: int
    unit: str = "n"

    @property
    def id(self) -> str:
        """A file-system-safe id, unique within a run (the budget prefixed by its unit).

        Names made only of safe characters are kept as they are; any other name is sanitised
        and suffixed with a hash of the raw id, so `rm:a/b` and `rm:a_b` never share a folder.
        """
        raw = f"{self.task}--{self.rm}--{self.strategy}--{self.unit}{self.budget}"
        safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", raw)
        return safe if safe == raw else f"{safe}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


class _NoRM(RewardModel):
    """Stands in for the reward model in cells of strategies that use none."""

    name = NO_RM

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        raise ConfigError("this strategy declared it uses no reward model but asked for scores; "
                          "set `uses_rm = True` on the strategy class")


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


def check_search_flags(spec: RunSpec, search_tasks: Sequence[str]) -> None:
    """Search tasks need --strategy, --budget and --policy (step-level tasks need none of them)."""
    missing = [flag for flag, value in (("--strategy", spec.strategies), ("--budget", spec.budgets),
                                        ("--policy", spec.policy)) if not value]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}: task(s) {', '.join(search_tasks)} generate and search, so give "
                          f"them as flags or in --config FILE.yaml (step-level tasks such as processbench_math need "
                          f"only --tasks and --rm; see `prmbench run --help`)")


def check_compatible(spec: RunSpec, policy: Policy, strategies: Mapping[str, Strategy]) -> None:
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


class Runner:
    """Executes a RunSpec into a run directory."""

    progress_enabled: ClassVar[Callable[[], bool]] = staticmethod(lambda: sys.stderr.isatty())

    def __init__(self, spec: RunSpec, registry: Registry, output: Path, resume: bool = False,
                 log: Callable[[str], None] | None = None, concurrency: int | None = None):
        spec.validate()
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ConfigError(f"--concurrency must be a positive integer (got {concurrency!r})")
        self.requested_concurrency = concurrency
        self.concurrency = concurrency or 1
        self.spec = spec
        self.registry = registry
        self.output = Path(output)
        self.resume = resume
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.show_progress = Runner.progress_enabled()

    # -- set-up -----------------------------------------------------------------------------
    def _build(self) -> tuple[dict[str, Task], Policy | None, dict[str, RewardModel], dict[str, Strategy]]:
        """The run's components; no policy and no strategies when every task is step-level."""
        reg, s = self.registry, self.spec
        # --X-args: `key=value` for every component of the kind that takes it, `NAME:key=value` for one
        task_args = reg.distribute_args("task", s.tasks, s.task_args)
        tasks = {}
        for t in s.tasks:
            args = task_args[t]
            if t in s.data_files:
                args["data_file"] = s.data_files[t]
            tasks[t] = reg.build("task", t, args)
        search = [t for t, task in tasks.items() if not is_step_task(task)]
        if search:
            check_search_flags(s, search)
        strategy_args = reg.distribute_args("strategy", s.strategies, s.strategy_args) if search else {}
        strategies = {name: reg.build("strategy", name, strategy_args[name]) for name in s.strategies} if search else {}
        rm_args = reg.distribute_args("rm", s.rms, s.rm_args)
        rms = {name: reg.build("rm", name, rm_args[name]) for name in s.rms}
        policy = None
        if search:
            policy_args = reg.distribute_args("policy", (s.policy,), s.policy_args)[s.policy]
            if "log_dir" not in policy_args and reg.takes("policy", s.policy, "log_dir"):
                policy_args["log_dir"] = str(self.output / LOGS_DIR)  # a managed server's log stays with the run
            policy = reg.build("policy", s.policy, policy_args)
        return tasks, policy, rms, strategies

    def _load_problems(self, tasks: Mapping[str, Task], policy: Policy) -> tuple[dict[str, list[Problem]], dict[str, Any]]:
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
        tasks, policy, rms, strategies = self._build()
        steps = plan_step_cells({n: t for n, t in tasks.items() if is_step_task(t)}, rms, self.spec.limit)
        search_tasks = {n: t for n, t in tasks.items() if n not in steps.tasks}
        problems: dict[str, list[Problem]] = {}
        task_info: dict[str, Any] = {}
        if policy is not None:
            check_compatible(self.spec, policy, strategies)
            self.concurrency = self.requested_concurrency or policy.default_concurrency
            problems, task_info = self._load_problems(search_tasks, policy)
        cells = [c for c in expand_cells(self.spec, strategies) if c.task in search_tasks]
        run = {
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
                "rms": {n: {**r.identity(), "num_parameters": r.num_parameters} for n, r in rms.items()},
                "strategies": {n: st.identity() for n, st in strategies.items()},
            },
            "tasks": {**task_info, **steps.info},
            "cells": [{"id": c.id, "kind": SEARCH_KIND, "task": c.task, "rm": c.rm, "strategy": c.strategy,
                       "budget": c.budget, "budget_unit": c.unit, "policy": self.spec.policy} for c in cells]
                     + [c.to_json() for c in steps.cells],
        }
        if old is not None:  # same flags (prepare_output); also the same data, models and prmbench
            check_resume(self.output, old, run)
        write_json_atomic(self.output / RUN_FILE, run)
        cache = Cache(self.output / CACHE_FILE)
        gen = self.spec.gen_params()
        try:
            for tname, task in tasks.items():
                if tname in steps.tasks:  # step-level: score labelled solutions (prmbench.step_runner)
                    run_step_cells(steps, tname, rms, self.output / CELLS_DIR, cache,
                                   lambda total, desc: _progress(total, desc, self.show_progress), self.log)
                    continue
                assert policy is not None
                calls = ModelCalls(task, policy, cache, gen, self.spec.seed)
                self._prefetch_pool(calls, problems[tname], strategies)
                for cell in (c for c in cells if c.task == tname):
                    rm = rms[cell.rm] if cell.rm != NO_RM else _NoRM()
                    self._run_cell(cell, calls, rm, strategies[cell.strategy], problems[tname])
        except BaseException as e:  # Ctrl-C or a crash: say so in run.json; finished records are on disk
            run["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}"
            write_json_atomic(self.output / RUN_FILE, run)
            raise
        finally:
            cache.close()
            for component in [policy, *rms.values(), *tasks.values(), *strategies.values()]:
                if component is not None:
                    component.close()
        run["status"] = "complete"
        run["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        write_json_atomic(self.output / RUN_FILE, run)
        return self.output

    def _prefetch_pool(self, calls: ModelCalls, problems: Sequence[Problem], strategies: Mapping[str, Strategy]) -> None:
        unit = self.spec.budget_unit
        if not needs_allowance(unit):  # explicit caps: pool strategies draw on demand
            return
        # Units n and nominal measure every cell's allowance from pool samples 0..N-1.
        sizes = [*self.spec.budgets, *(st.pool_size(Budget(b, unit)) for st in strategies.values()
                                       if st.uses_pool for b in self.spec.budgets)]
        if not sizes:
            return
        n = max(sizes)
        # ~16 samples per backend call and problem searched at once (--concurrency problems' pools together)
        chunk = (max(1, 16 // n) if n < 16 else 1) * self.concurrency
        bar = _progress(len(problems), f"{calls.task.name}: sample pool of {n}", self.show_progress)
        t0 = time.perf_counter()
        for i in range(0, len(problems), chunk):
            part = problems[i : i + chunk]
            calls.generate([calls.request(p, n=n) for p in part], [p.id for p in part])
            bar.update(len(part))
        bar.close()
        self.log(f"{calls.task.name}: pool of {n} samples x {len(problems)} problems ready "
                 f"({time.perf_counter() - t0:.1f}s)")

    def _run_cell(self, cell: Cell, calls: ModelCalls, rm: RewardModel, strategy: Strategy,
                  problems: Sequence[Problem]) -> None:
        cell_dir = self.output / CELLS_DIR / cell.id
        cell_dir.mkdir(parents=True, exist_ok=True)
        samples_path = cell_dir / SAMPLES_FILE
        records: list[dict[str, Any]] = []
        if samples_path.exists():
            records = list(read_jsonl(samples_path))
            drop_torn_tail(samples_path)
        done = {r["problem_id"] for r in records}
        todo = [p for p in problems if p.id not in done]
        bar = _progress(len(problems), cell.id, self.show_progress)
        bar.update(len(problems) - len(todo))
        with open(samples_path, "a") as f:
            for rec in self._solve_many(cell, calls, rm, strategy, todo):
                line = rec.to_json()
                f.write(_dumps(line) + "\n")
                f.flush()
                os.fsync(f.fileno())
                records.append(line)
                bar.update(1)
        bar.close()
        order = {p.id: i for i, p in enumerate(problems)}
        records = sorted((r for r in records if r["problem_id"] in order), key=lambda r: order[r["problem_id"]])
        metrics = cell_metrics(records)
        metrics["kind"] = SEARCH_KIND
        metrics["cell"] = {"id": cell.id, "kind": SEARCH_KIND, "task": cell.task, "rm": cell.rm,
                           "strategy": cell.strategy, "budget": cell.budget, "policy": self.spec.policy}
        metrics["complete"] = len(records) == len(problems)
        write_json_atomic(cell_dir / METRICS_FILE, metrics)
        acc = metrics.get("accuracy")
        self.log(f"{cell.id}: accuracy {acc:.3f} on {metrics['n']} problems" if acc is not None else f"{cell.id}: no records")

    def _solve_many(self, cell: Cell, calls: ModelCalls, rm: RewardModel, strategy: Strategy,
                    problems: Sequence[Problem]) -> Iterator[Record]:
        """Records of `problems`, in their order: up to `concurrency` searches at once (their model
        calls coalesced, see prmbench.scheduler); the chosen solutions of each `GRADE_CHUNK`
        finished problems are graded together (`ModelCalls.grade_many`: verdicts already cached
        are reused; code tasks judge the rest on all sandbox slots at once)."""
        scheduler = Scheduler(calls, self.concurrency)
        searched: dict[int, tuple[SearchResult, SearchContext, float, float | None]] = {}
        done = 0

        def grade(upto: int) -> list[Record]:
            nonlocal done
            part = [(problems[i], searched.pop(i)) for i in range(done, upto)]
            done = upto
            trees = [{"problem_id": p.id, "strategy": cell.strategy, **s[0].tree} for p, s in part if s[0].tree is not None]
            if trees:  # beside samples.jsonl; written first, so a record never lacks its tree (readers keep the last row)
                with open(self.output / CELLS_DIR / cell.id / TREES_FILE, "a") as f:
                    f.write("".join(_dumps(t) + "\n" for t in trees))
            chosen = [s[0].chosen_candidate for _, s in part]
            graded = iter(calls.grade_many([(p, c.text) for (p, _), c in zip(part, chosen) if c is not None]))
            grades = [next(graded) if c is not None else Grade(False, {"reason": "no_candidate"}) for c in chosen]
            return [self._record(cell, p, *s, g) for (p, s), g in zip(part, grades)]

        with closing(scheduler.map(problems, lambda _, p, c: self._search(cell, c, rm, strategy, p))) as results:
            for i, result in results:
                searched[i] = result
                ready = done
                while ready in searched:
                    ready += 1
                while ready - done >= GRADE_CHUNK:
                    yield from grade(done + GRADE_CHUNK)
        if done < len(problems):
            yield from grade(len(problems))

    def _search(self, cell: Cell, calls: ModelCalls | CoalescedCalls, rm: RewardModel, strategy: Strategy,
                problem: Problem) -> tuple[SearchResult, SearchContext, float, float | None]:
        """Run the strategy on one problem under the cell's budget: (result, context, search
        seconds, allowance FLOPs)."""
        unit = cell.unit
        allowance = None
        if needs_allowance(unit):
            allowance = measure_allowance(calls, rm if cell.rm != NO_RM else None, problem, cell.budget)
        budget = make_budget(unit, cell.budget, allowance)
        ctx = SearchContext(calls, rm, problem, budget, aggregation=strategy.aggregation)
        t0 = time.perf_counter()
        result = strategy.search(ctx.problem, ctx)  # the public view: references stay with the grader
        search_seconds = time.perf_counter() - t0
        return result, ctx, search_seconds, budget.max_flops if allowance is None else allowance.flops

    def _record(self, cell: Cell, problem: Problem, result: SearchResult, ctx: SearchContext, search_seconds: float,
                allowance_flops: float | None, grade: Grade) -> Record:
        """The record of one solved and graded problem."""
        chosen = result.chosen_candidate
        info = {**dict(result.info), "wall_seconds": round(search_seconds, 4),
                "chosen_index": result.chosen,
                "chosen_score": chosen.score if chosen is not None else None,
                "chosen_step_scores": list(chosen.step_scores) if chosen is not None else None,
                "finish_reason": chosen.finish_reason if chosen is not None else None,
                "candidate_scores": [c.score for c in result.candidates],
                "candidate_answers": [c.answer for c in result.candidates]}
        if ctx._rm_truncated:  # inputs longer than the reward model reads: scored on their leading steps only
            info["rm_truncated"] = ctx._rm_truncated
        return Record(problem_id=problem.id, task=cell.task, rm=cell.rm, strategy=cell.strategy, budget=cell.budget,
                      seed=self.spec.seed, correct=bool(grade.correct),
                      answer=chosen.answer if chosen is not None else None,
                      chosen_text=chosen.text if chosen is not None else None,
                      n_candidates=len(result.candidates), spend=ctx.spend,
                      grade_details=dict(grade.details), info=info, budget_unit=cell.unit,
                      allowance_flops=allowance_flops)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def run(spec: RunConfig, registry: Registry, output: str | Path, resume: bool = False,
        concurrency: int | None = None) -> Path:
    """Python API: execute `spec` into `output` (see Runner)."""
    return Runner(spec, registry, Path(output), resume=resume, concurrency=concurrency).run()
