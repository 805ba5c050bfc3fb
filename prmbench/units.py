"""Work units: what an executor runs, and the solver that turns one unit into records.

A unit is one task's chunk of problems (a search task) or of labelled solutions (a step-level
task) together with every cell of that task that still lacks some of them, so the shared sample
pool and the cache stay with the unit. `UnitSolver.solve` is a function of the unit, the run's
components and the cache: it yields each cell's records (and search trees) in problem order,
chunk by chunk, and writes nothing itself. The local executor runs a task as one unit in this
process (the runner's historical behaviour); the Ray executor (prmbench.executors) runs chunks on
workers that own their own components. Records do not depend on how the problems are chunked,
because the Policy and RewardModel contracts are batch invariant and every cached value is keyed
by its content.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from prmbench.budgets import make_budget, measure_allowance, needs_allowance
from prmbench.config import RunConfig
from prmbench.context import ModelCalls, SearchContext
from prmbench.errors import ConfigError
from prmbench.interfaces import Policy, RewardModel, Strategy, Task
from prmbench.registry import Registry
from prmbench.scheduler import CoalescedCalls, Scheduler
from prmbench.step_runner import iter_step_chunks
from prmbench.step_task import is_step_task
from prmbench.types import Budget, Grade, Problem, Record, RMOutput, SearchResult

NO_RM = "none"
SEARCH_UNIT, STEP_UNIT = "search", "step"

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


@dataclass(frozen=True)
class Components:
    """A run's components, built from its config (the same way on the driver and on every worker)."""

    tasks: Mapping[str, Task]
    policy: Policy | None
    rms: Mapping[str, RewardModel]
    strategies: Mapping[str, Strategy]

    def close(self) -> None:
        """Close every component (models, servers, sandboxes)."""
        for component in [self.policy, *self.rms.values(), *self.tasks.values(), *self.strategies.values()]:
            if component is not None:
                component.close()


def check_search_flags(spec: RunConfig, search_tasks: Sequence[str]) -> None:
    """Search tasks need --strategy, --budget and --policy (step-level tasks need none of them)."""
    missing = [flag for flag, value in (("--strategy", spec.strategies), ("--budget", spec.budgets),
                                        ("--policy", spec.policy)) if not value]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}: task(s) {', '.join(search_tasks)} generate and search, so give "
                          f"them as flags or in --config FILE.yaml (step-level tasks such as processbench_math need "
                          f"only --tasks and --rm; see `prmbench run --help`)")


def build_components(spec: RunConfig, registry: Registry, with_policy: bool = True,
                     log_dir: Path | None = None) -> Components:
    """The run's components; no policy and no strategies when every task is step-level (and no
    policy either with `with_policy=False`: a Ray driver leaves it to the workers). A policy that
    takes `log_dir` (one that starts a server) gets `log_dir` unless the user gave one."""
    reg, s = registry, spec
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
    if search and with_policy:
        policy_args = reg.distribute_args("policy", (s.policy,), s.policy_args)[s.policy]
        if log_dir is not None and "log_dir" not in policy_args and reg.takes("policy", s.policy, "log_dir"):
            policy_args["log_dir"] = str(log_dir)
        policy = reg.build("policy", s.policy, policy_args)
    return Components(tasks, policy, rms, strategies)


@dataclass(frozen=True)
class PolicyFacts:
    """What the driver needs of a policy it did not build (a Ray worker built it): the same
    attributes `check_compatible`, problem selection and run.json read from a `Policy`."""

    name: str
    identity_: Mapping[str, Any]
    num_parameters: int
    supports_stepwise: bool
    measures_seconds: bool
    default_concurrency: int
    servable: frozenset[str] | None

    @classmethod
    def of(cls, policy: Policy) -> "PolicyFacts":
        """The facts of a built policy."""
        ids = policy.available_problem_ids()
        return cls(policy.name, policy.identity(), policy.num_parameters, policy.supports_stepwise,
                   policy.measures_seconds, policy.default_concurrency, None if ids is None else frozenset(ids))

    def identity(self) -> dict[str, Any]:
        """See `Component.identity`."""
        return dict(self.identity_)

    def available_problem_ids(self) -> set[str] | None:
        """See `Policy.available_problem_ids`."""
        return None if self.servable is None else set(self.servable)


@dataclass(frozen=True)
class CellTodo:
    """A cell and the ids of the unit's problems (or items) it still lacks."""

    cell: Any  # Cell (search) or prmbench.step_runner.StepCell (step)
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Unit:
    """One task's chunk of problems (search) or labelled solutions (step), with its cells' work."""

    kind: str  # SEARCH_UNIT | STEP_UNIT
    task: str
    index: int  # position among the task's units: records are written in unit order
    items: tuple[Any, ...]  # Problems or StepItems, in task order
    todo: tuple[CellTodo, ...]

    @property
    def name(self) -> str:
        """`TASK#INDEX`, for messages."""
        return f"{self.task}#{self.index}"


@dataclass(frozen=True)
class CellOutput:
    """Records (and search trees) of one cell, in problem order, to append to its files."""

    cell_id: str
    records: tuple[dict[str, Any], ...]
    trees: tuple[dict[str, Any], ...] = ()


def make_units(kind: str, task: str, items: Sequence[Any], cells: Sequence[Any], done: Mapping[str, set[str]],
               size: int | None) -> list[Unit]:
    """The task's units: chunks of `size` items (None: one unit), each with the cells that lack
    some of its items (`done`: cell id -> ids written); chunks with nothing to do are left out."""
    size = size or max(1, len(items))
    units = []
    for index, start in enumerate(range(0, len(items), size)):
        chunk = tuple(items[start:start + size])
        todo = tuple(CellTodo(c, ids) for c in cells
                     if (ids := tuple(it.id for it in chunk if it.id not in done.get(c.id, ()))))
        if todo:
            units.append(Unit(kind, task, index, chunk, todo))
    return units


Progress = Callable[[int, str], Any]


class UnitSolver:
    """Solves units with one set of components and one cache (see module docstring)."""

    def __init__(self, spec: RunConfig, components: Components, cache: Any, concurrency: int,
                 progress: Progress | None = None, log: Callable[[str], None] | None = None):
        self.spec = spec
        self.components = components
        self.cache = cache  # a prmbench.cache.Cache, or anything with its get_many/put_many
        self.concurrency = concurrency
        self.progress = progress
        self.log = log or (lambda msg: None)

    def solve(self, unit: Unit) -> Iterator[CellOutput]:
        """The unit's records, cell by cell (in the unit's cell order), chunk by chunk."""
        if unit.kind == STEP_UNIT:
            yield from self._solve_step(unit)
        else:
            yield from self._solve_search(unit)

    def solve_all(self, unit: Unit) -> list[CellOutput]:
        """Every output of `solve`, one per cell (chunks joined)."""
        joined: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for out in self.solve(unit):
            records, trees = joined.setdefault(out.cell_id, ([], []))
            records.extend(out.records)
            trees.extend(out.trees)
        return [CellOutput(cid, tuple(r), tuple(t)) for cid, (r, t) in joined.items()]

    def close(self) -> None:
        """Close the components."""
        self.components.close()

    # -- step-level units ---------------------------------------------------------------------
    def _solve_step(self, unit: Unit) -> Iterator[CellOutput]:
        task = self.components.tasks[unit.task]
        for todo in unit.todo:
            ids = set(todo.ids)
            items = [it for it in unit.items if it.id in ids]
            for chunk in iter_step_chunks(task, self.components.rms[todo.cell.rm], items, self.cache):  # type: ignore[arg-type]
                yield CellOutput(todo.cell.id, tuple(chunk))

    # -- search units -------------------------------------------------------------------------
    def _solve_search(self, unit: Unit) -> Iterator[CellOutput]:
        comps = self.components
        assert comps.policy is not None
        calls = ModelCalls(comps.tasks[unit.task], comps.policy, self.cache, self.spec.gen_params(), self.spec.seed)
        needed = {i for todo in unit.todo for i in todo.ids}
        self._prefetch_pool(calls, [p for p in unit.items if p.id in needed])
        for todo in unit.todo:
            cell: Cell = todo.cell
            rm = comps.rms[cell.rm] if cell.rm != NO_RM else _NoRM()
            ids = set(todo.ids)
            problems = [p for p in unit.items if p.id in ids]
            for records, trees in self._solve_many(cell, calls, rm, comps.strategies[cell.strategy], problems):
                yield CellOutput(cell.id, tuple(r.to_json() for r in records), tuple(trees))

    def _prefetch_pool(self, calls: ModelCalls, problems: Sequence[Problem]) -> None:
        unit = self.spec.budget_unit
        if not needs_allowance(unit) or not problems:  # explicit caps: pool strategies draw on demand
            return
        # Units n and nominal measure every cell's allowance from pool samples 0..N-1.
        sizes = [*self.spec.budgets, *(st.pool_size(Budget(b, unit)) for st in self.components.strategies.values()
                                       if st.uses_pool for b in self.spec.budgets)]
        if not sizes:
            return
        n = max(sizes)
        # ~16 samples per backend call and problem searched at once (--concurrency problems' pools together)
        chunk = (max(1, 16 // n) if n < 16 else 1) * self.concurrency
        bar = self.progress(len(problems), f"{calls.task.name}: sample pool of {n}") if self.progress else None
        t0 = time.perf_counter()
        for i in range(0, len(problems), chunk):
            part = problems[i : i + chunk]
            calls.generate([calls.request(p, n=n) for p in part], [p.id for p in part])
            if bar is not None:
                bar.update(len(part))
        if bar is not None:
            bar.close()
        self.log(f"{calls.task.name}: pool of {n} samples x {len(problems)} problems ready "
                 f"({time.perf_counter() - t0:.1f}s)")

    def _solve_many(self, cell: Cell, calls: ModelCalls, rm: RewardModel, strategy: Strategy,
                    problems: Sequence[Problem]) -> Iterator[tuple[list[Record], list[dict[str, Any]]]]:
        """(records, search trees) of `problems`, in their order, `GRADE_CHUNK` at a time: up to
        `concurrency` searches at once (their model calls coalesced, see prmbench.scheduler); the
        chosen solutions of each chunk of finished problems are graded together
        (`ModelCalls.grade_many`: verdicts already cached are reused; code tasks judge the rest on
        all sandbox slots at once)."""
        scheduler = Scheduler(calls, self.concurrency)
        searched: dict[int, tuple[SearchResult, SearchContext, float, float | None]] = {}
        done = 0

        def grade(upto: int) -> tuple[list[Record], list[dict[str, Any]]]:
            nonlocal done
            part = [(problems[i], searched.pop(i)) for i in range(done, upto)]
            done = upto
            trees = [{"problem_id": p.id, "strategy": cell.strategy, **s[0].tree} for p, s in part if s[0].tree is not None]
            chosen = [s[0].chosen_candidate for _, s in part]
            graded = iter(calls.grade_many([(p, c.text) for (p, _), c in zip(part, chosen) if c is not None]))
            grades = [next(graded) if c is not None else Grade(False, {"reason": "no_candidate"}) for c in chosen]
            return [self._record(cell, p, *s, g) for (p, s), g in zip(part, grades)], trees

        with closing(scheduler.map(problems, lambda _, p, c: self._search(cell, c, rm, strategy, p))) as results:
            for i, result in results:
                searched[i] = result
                ready = done
                while ready in searched:
                    ready += 1
                while ready - done >= GRADE_CHUNK:
                    yield grade(done + GRADE_CHUNK)
        if done < len(problems):
            yield grade(len(problems))

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
