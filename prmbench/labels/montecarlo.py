"""Monte Carlo step labels: for a solution's step prefixes, sample rollouts and grade them.

The value of prefix i (steps 0..i) is the share of K rollouts continuing it that the task's
grader judges correct (Math-Shepherd / OmegaPRM). The last prefix is the whole solution, whose
value is its own grade (one "rollout": the solution). Which prefixes are evaluated is the
planner's choice (prmbench.labels.search: every one, or a binary search for the first error).

Generation goes through `ModelCalls` (cached by policy, problem, prefix, seed and sample index),
so an interrupted labelling recomputes nothing it already sampled; grades are cached by
(task identity, problem, text). Every generation handed out is metered (`Meter`), cached or not,
so the recorded spend is the compute the labels cost. Grading uses `Task.grade_many`, so code
tasks judge rollouts on their sandbox slots in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from prmbench.cache import Cache, cache_key
from prmbench.context import GenParams, Meter, ModelCalls
from prmbench.interfaces import Policy, Task
from prmbench.labels.search import PLANNERS, first_error, hard_labels
from prmbench.types import Problem, Spend


@dataclass(frozen=True)
class Solution:
    """A solution to label: its problem, steps and full text, and where it came from."""

    problem: Problem
    index: int
    steps: tuple[str, ...]
    text: str
    source: str
    finish_reason: str | None = None
    spend: Spend = Spend()


@dataclass(frozen=True)
class Rollout:
    """One graded completion of a prefix: `text` is the full solution text as graded."""

    text: str
    correct: bool
    finish_reason: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {"text": self.text, "correct": self.correct, "finish_reason": self.finish_reason}


@dataclass(frozen=True)
class Annotation:
    """One annotator's Monte Carlo labels of one solution.

    `mc_values[i]` is the share of correct rollouts of prefix i (None where not evaluated);
    `rollouts[i]` the graded rollouts behind it; `spend` the generation compute they cost.
    """

    annotator: str
    search: str
    mc_values: tuple[float | None, ...]
    labels: tuple[float | None, ...]
    first_error: int | None
    rollouts: tuple[tuple[Rollout, ...], ...]
    spend: Spend

    def to_json(self, with_rollouts: bool = False) -> dict[str, Any]:
        """JSON-compatible form (rollouts only when asked)."""
        d: dict[str, Any] = {"mc_values": list(self.mc_values), "labels": list(self.labels),
                             "first_error": self.first_error, "spend": self.spend.to_json()}
        if with_rollouts:
            d["rollouts"] = [[r.to_json() for r in rs] for rs in self.rollouts]
        return d


class Grader:
    """`Task.grade_many` with a cache: (task identity, problem id, text) -> correct."""

    def __init__(self, task: Task, cache: Cache):
        self.task = task
        self.cache = cache
        self._task_id = task.cache_id()

    def correct(self, items: Sequence[tuple[Problem, str]]) -> list[bool]:
        """Whether each (problem, full text) is graded correct, in order."""
        keys = [cache_key("grade", self._task_id, p.id, text) for p, text in items]
        found = self.cache.get_many(keys)
        todo = {k: item for k, item in zip(keys, items) if k not in found}
        if todo:
            grades = self.task.grade_many(list(todo.values()))
            fresh = {k: {"correct": bool(g.correct), "details": dict(g.details)} for k, g in zip(todo, grades)}
            self.cache.put_many(fresh)
            found.update(fresh)
        return [bool(found[k]["correct"]) for k in keys]


def prefix_text(task: Task, steps: Sequence[str], i: int) -> str:
    """The text a rollout of prefix i continues: steps 0..i joined, then the step delimiter."""
    return task.join_steps(steps[: i + 1]) + task.step_delimiter


class MonteCarloLabeller:
    """Labels solutions with one annotator policy: K rollouts per evaluated prefix."""

    def __init__(self, name: str, task: Task, policy: Policy, cache: Cache, gen: GenParams, seed: int,
                 rollouts: int, search: str, grader: Grader):
        self.name = name
        self.task = task
        self.policy = policy
        self.calls = ModelCalls(task, policy, cache, gen, seed)
        self.k = rollouts
        self.search = search
        self.plan = PLANNERS[search]
        self.grader = grader

    def generate_solutions(self, problems: Sequence[Problem], per_problem: int) -> list[Solution]:
        """`per_problem` full solutions of each problem (pool samples 0..per_problem-1), metered."""
        reqs = [self.calls.request(p, n=per_problem) for p in problems]
        out = []
        for p, gens in zip(problems, self.calls.generate(reqs, [p.id for p in problems])):
            for j, g in enumerate(gens):
                meter = Meter(self.policy.num_parameters, 0)
                meter.charge_generations([g])
                out.append(Solution(problem=p, index=j, steps=tuple(self.task.split_steps(g.text)), text=g.text,
                                    source=f"policy:{self.name}", finish_reason=g.finish_reason, spend=meter.spend))
        return out

    def annotate(self, solutions: Sequence[Solution], solution_correct: Sequence[bool]) -> list[Annotation]:
        """Each solution's labels. All solutions advance together, one batched policy call and
        one `grade_many` per round (linear search: one round; binary: about log2(steps))."""
        known: list[dict[int, float]] = [{} for _ in solutions]
        rolls: list[dict[int, tuple[Rollout, ...]]] = [{} for _ in solutions]
        meters = [Meter(self.policy.num_parameters, 0) for _ in solutions]
        while True:
            todo = [(s, i) for s, sol in enumerate(solutions) for i in self.plan(len(sol.steps), known[s])]
            if not todo:
                break
            live = [(s, i) for s, i in todo if i < len(solutions[s].steps) - 1]
            reqs = [self.calls.request(solutions[s].problem, prefix=prefix_text(self.task, solutions[s].steps, i),
                                       n=self.k) for s, i in live]
            gens = self.calls.generate(reqs, [solutions[s].problem.id for s, _ in live]) if live else []
            texts = []
            for (s, i), gs in zip(live, gens):
                meters[s].charge_generations(gs)
                prefix = prefix_text(self.task, solutions[s].steps, i)
                texts.append([(prefix + g.text, g.finish_reason) for g in gs])
            grades = iter(self.grader.correct([(solutions[s].problem, t) for (s, _), ts in zip(live, texts)
                                               for t, _ in ts]))
            for (s, i), ts in zip(live, texts):
                rolls[s][i] = tuple(Rollout(t, next(grades), fr) for t, fr in ts)
                known[s][i] = sum(r.correct for r in rolls[s][i]) / len(ts)
            for s, i in todo:
                if i == len(solutions[s].steps) - 1:  # the whole solution: its own grade
                    sol = solutions[s]
                    rolls[s][i] = (Rollout(sol.text, solution_correct[s], sol.finish_reason),)
                    known[s][i] = float(solution_correct[s])
        out = []
        for s, sol in enumerate(solutions):
            n = len(sol.steps)
            out.append(Annotation(
                annotator=self.name, search=self.search,
                mc_values=tuple(known[s].get(i) for i in range(n)),
                labels=tuple(hard_labels(self.search, n, known[s])),
                first_error=first_error(self.search, n, known[s]),
                rollouts=tuple(rolls[s].get(i, ()) for i in range(n)),
                spend=meters[s].spend,
            ))
        return out

    def identity(self) -> dict[str, Any]:
        """What the label rows record about this annotator."""
        return {"name": self.name, "policy": {**self.policy.identity(), "num_parameters": self.policy.num_parameters},
                "rollouts": self.k, "search": self.search, "gen": dict(vars(self.calls.gen)),
                "seed": self.calls.run_seed}


def pooled_values(annotations: Sequence[Annotation]) -> list[float | None]:
    """Per step, the share of correct rollouts over every annotator that evaluated it."""
    n = len(annotations[0].mc_values)
    out: list[float | None] = []
    for i in range(n):
        rs = [r for a in annotations for r in a.rollouts[i]]
        out.append(sum(r.correct for r in rs) / len(rs) if rs else None)
    return out


def annotations_by_step(annotations: Mapping[str, Annotation]) -> list[list[dict[str, Any]]]:
    """Per step, every annotator's rollouts (JSON), each tagged with its annotator."""
    n = len(next(iter(annotations.values())).rollouts)
    return [[{**r.to_json(), "annotator": name} for name, a in annotations.items() for r in a.rollouts[i]]
            for i in range(n)]
