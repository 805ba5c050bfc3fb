"""What a strategy may use during one search: cached, metered access to policy and reward model.

`ModelCalls` is shared by all cells of a task in a run: it owns the policy, the reward models and
the cache, so identical requests (same component, config, input, seed and sample index) are
computed once per run, whichever strategy or budget asks. Scores and grades are keyed by the
task's identity too (tasks such as humaneval and humaneval_plus share problem ids but not
verdicts), and grades by the exact text graded, so a resumed run never re-judges a program.
`MeteredSearchContext` (the `SearchContext` Protocol of prmbench.interfaces) is made per (cell, problem): it meters every generation and score it hands out,
including those served from the cache, so the recorded spend is the compute the search consumed,
not the compute this particular process did.

References stay with the grader: prompts are built from, and reward models are handed, the
problem's public view (`Problem.public_view`); a `GraderRewardModel` (the oracle) gets only the
task's verdicts on each candidate's exact text.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from prmbench.aggregate import aggregate
from prmbench.cache import Cache, cache_key
from prmbench.interfaces import GraderRewardModel, Policy, RewardModel, Task
from prmbench.types import Budget, Candidate, GenRequest, Generation, Grade, Problem, RMOutput, Spend


@dataclass(frozen=True)
class GenParams:
    """Sampling settings of a run, applied to every generation request."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512


def derive_seed(run_seed: int, problem_id: str) -> int:
    """A per-problem base seed: sample i of a problem uses derive_seed(...) + i."""
    h = hashlib.sha256(f"{run_seed}:{problem_id}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x3FFFFFFF


class ModelCalls:
    """Cached access to one policy and one reward model, shared across cells of a run."""

    def __init__(self, task: Task, policy: Policy, cache: Cache, gen: GenParams, run_seed: int):
        self.task = task
        self.policy = policy
        self.cache = cache
        self.gen = gen
        self.run_seed = run_seed
        self.task_id = task.cache_id()  # name, class, version and config (grader/judge versions)

    # -- generation -------------------------------------------------------------------------
    def request(self, problem: Problem, *, prefix: str = "", n: int = 1, start: int = 0,
                stop: tuple[str, ...] = (), max_tokens: int | None = None) -> GenRequest:
        """A request for samples start..start+n-1 of `problem`, continuing `prefix`, of at most
        `max_tokens` tokens each (default: the run's --max-tokens; a search may ask for fewer)."""
        return GenRequest(
            messages=self.task.prompt(problem.public_view()),
            prefix=prefix,
            n=n,
            temperature=self.gen.temperature,
            top_p=self.gen.top_p,
            max_tokens=self.gen.max_tokens if max_tokens is None else min(max_tokens, self.gen.max_tokens),
            stop=stop,
            seed=derive_seed(self.run_seed, problem.id) + start,
            sample_index=start,
        )

    def _gen_keys(self, req: GenRequest, problem_id: str, policy_id: str) -> list[str]:
        """Cache keys of the request's samples: the request without n, with sample i's seed and index."""
        body = req.to_json()
        body.pop("n")
        keys = []
        for i in range(req.n):
            body["seed"] = req.seed + i
            body["sample_index"] = req.sample_index + i
            keys.append(cache_key("gen", policy_id, problem_id, body))
        return keys

    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str]) -> list[list[Generation]]:
        """Samples for each request, served from the cache where present, else from the policy.

        Missing samples are sent to the backend in one call as single-sample requests with the
        sample's own seed, which by the Policy contract equals sample i of the n-sample request.
        """
        policy_id = self.policy.cache_id()
        keys = [self._gen_keys(r, pid, policy_id) for r, pid in zip(requests, problem_ids)]
        found = self.cache.get_many(k for ks in keys for k in ks)
        missing: list[tuple[str, GenRequest, str]] = []
        for r, pid, ks in zip(requests, problem_ids, keys):
            for i, k in enumerate(ks):
                if k not in found:
                    missing.append((k, replace(r, n=1, seed=r.seed + i, sample_index=r.sample_index + i), pid))
        if missing:
            if len({k for k, _, _ in missing}) != len(missing):  # duplicate requests in one batch
                uniq: dict[str, tuple[GenRequest, str]] = {k: (r, p) for k, r, p in missing}
                missing = [(k, r, p) for k, (r, p) in uniq.items()]
            out = self.policy.generate([m[1] for m in missing], [m[2] for m in missing])
            fresh = {k: gens[0].to_json() for (k, _, _), gens in zip(missing, out)}
            self.cache.put_many(fresh)
            found.update(fresh)
        return [[Generation.from_json(found[k]) for k in ks] for ks in keys]

    # -- scoring ----------------------------------------------------------------------------
    def score(self, rm: RewardModel, problem: Problem, candidates: Sequence[Sequence[str]],
              texts: Sequence[str] | None = None) -> list[RMOutput]:
        """Reward-model outputs for step lists, cached by (rm id, task id, problem, steps).

        `texts` are the candidates' full texts (default: the joined steps). The reward model is
        handed the public view of `problem`; a `GraderRewardModel` gets the task's verdicts on
        `texts` instead (see `grade_many`).
        """
        return self.score_many(rm, [(problem, candidates, texts)])[0]

    def score_many(self, rm: RewardModel,
                   groups: Sequence[tuple[Problem, Sequence[Sequence[str]], Sequence[str] | None]]) -> list[list[RMOutput]]:
        """`score` for several (problem, candidates, texts) groups: what the cache lacks goes to
        the reward model in one `RewardModel.score_many` call (one batch across problems)."""
        if isinstance(rm, GraderRewardModel):
            all_texts = [list(texts) if texts is not None else [self.task.join_steps(s) for s in cands]
                         for _, cands, texts in groups]
            flat = iter(self._score_by_grades(rm, [(p, t) for (p, _, _), ts in zip(groups, all_texts) for t in ts]))
            return [[next(flat) for _ in ts] for ts in all_texts]
        rm_id = rm.cache_id()
        keys = [[cache_key("rm", rm_id, self.task_id, p.id, list(steps)) for steps in cands] for p, cands, _ in groups]
        found = self.cache.get_many(k for ks in keys for k in ks)
        todo: list[dict[str, list[str]]] = []  # per group: cache key -> steps still to score
        seen: set[str] = set()
        for ks, (_, cands, _) in zip(keys, groups):
            mine: dict[str, list[str]] = {}
            for k, steps in zip(ks, cands):
                if k not in found and k not in seen:
                    seen.add(k)
                    mine[k] = list(steps)
            todo.append(mine)
        n_todo = sum(len(m) for m in todo)
        if n_todo:
            asked = [(p.public_view(), list(m.values())) for (p, _, _), m in zip(groups, todo) if m]
            t0 = time.perf_counter()
            outs = rm.score_many(self.task, asked)
            if len(outs) != len(asked) or any(len(o) != len(a[1]) for o, a in zip(outs, asked)):
                raise RuntimeError(f"reward model {rm.name!r} returned the wrong number of outputs "
                                   f"for {n_todo} candidates")
            share = (time.perf_counter() - t0) / n_todo
            fresh = {k: (o if o.seconds else replace(o, seconds=share)).to_json()
                     for m, group_outs in zip((m for m in todo if m), outs) for k, o in zip(m, group_outs)}
            self.cache.put_many(fresh)
            found.update(fresh)
        return [[RMOutput.from_json(found[k]) for k in ks] for ks in keys]

    def _score_by_grades(self, rm: GraderRewardModel, items: Sequence[tuple[Problem, str]]) -> list[RMOutput]:
        graded = self._grades(items)
        outs = rm.from_grades([g for g, _ in graded])
        if len(outs) != len(items):
            raise RuntimeError(f"reward model {rm.name!r} returned {len(outs)} outputs for {len(items)} verdicts")
        return [o if o.seconds else replace(o, seconds=sec) for o, (_, sec) in zip(outs, graded)]

    # -- grading ----------------------------------------------------------------------------
    def grade_many(self, items: Sequence[tuple[Problem, str]]) -> list[Grade]:
        """The task's verdicts on (full problem, exact text) pairs, cached by (task id, problem,
        text): a text the oracle already graded, or one graded before an interruption, is not
        judged again. New texts are graded together (`Task.grade_many`: in parallel on a code
        task's sandbox slots)."""
        return [g for g, _ in self._grades(items)]

    def _grades(self, items: Sequence[tuple[Problem, str]]) -> list[tuple[Grade, float]]:
        """(verdict, grading seconds attributed to it) per item, through the cache."""
        keys = [cache_key("grade", self.task_id, p.id, text) for p, text in items]
        found = self.cache.get_many(keys)
        todo = {k: item for k, item in zip(keys, items) if k not in found}
        if todo:
            t0 = time.perf_counter()
            grades = self.task.grade_many(list(todo.values()))
            if len(grades) != len(todo):
                raise RuntimeError(f"task {self.task.name!r} returned {len(grades)} grades for {len(todo)} solutions")
            share = (time.perf_counter() - t0) / len(todo)
            fresh = {k: {**_json_safe(g.to_json()), "seconds": share} for k, g in zip(todo, grades)}
            self.cache.put_many(fresh)
            found.update(fresh)
        return [(Grade.from_json(found[k]), float(found[k].get("seconds", 0.0))) for k in keys]


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """`value` as it reads back from JSON (tuples as lists, other objects as strings), so a fresh
    verdict and a cached one are identical."""
    return json.loads(json.dumps(value, default=str))  # type: ignore[no-any-return]


@dataclass
class Meter:
    """Accumulates the spend of one search."""

    policy_params: int
    rm_params: int
    spend: Spend = field(default_factory=Spend)

    def charge_generations(self, gens: Sequence[Generation]) -> None:
        """Count samples: tokens, one call each, their wall seconds and policy FLOPs."""
        for g in gens:
            tokens = g.prompt_tokens + g.completion_tokens
            self.spend = self.spend + Spend(
                prompt_tokens=g.prompt_tokens,
                generated_tokens=g.completion_tokens,
                policy_calls=1,
                seconds=g.seconds,
                policy_flops=2.0 * self.policy_params * tokens,
            )

    def charge_scores(self, outs: Sequence[RMOutput]) -> None:
        """Count reward-model reads: tokens, one call per candidate, seconds and RM FLOPs."""
        for o in outs:
            self.spend = self.spend + Spend(
                rm_tokens=o.tokens, rm_calls=1, seconds=o.seconds, rm_flops=2.0 * self.rm_params * o.tokens
            )


class TaskView:
    """The public view of a task that strategies get as `ctx.task` (the `PublicTask` Protocol):
    step handling, answer extraction and voting keys; no `grade`, no references, no data files.

    Python cannot hide an object from in-process code, so this is an interface boundary, not a
    sandbox: the task is kept under a private name and nothing public reaches it.
    """

    __slots__ = ("_TaskView__task", "name", "domain", "step_delimiter")

    def __init__(self, task: Task):
        self.__task = task
        self.name = task.name
        self.domain = task.domain
        self.step_delimiter = task.step_delimiter

    def split_steps(self, text: str) -> list[str]:
        """See `Task.split_steps`."""
        return self.__task.split_steps(text)

    def join_steps(self, steps: Sequence[str]) -> str:
        """See `Task.join_steps`."""
        return self.__task.join_steps(steps)

    def extract_answer(self, text: str) -> str | None:
        """See `Task.extract_answer`."""
        return self.__task.extract_answer(text)

    def same_answer(self, a: str, b: str) -> bool:
        """See `Task.same_answer`."""
        return self.__task.same_answer(a, b)

    def answer_key(self, answer: str) -> str:
        """See `Task.answer_key`."""
        return self.__task.answer_key(answer)

    def vote_keys(self, problem: Problem, answers: Sequence[str]) -> list[str] | None:
        """See `Task.vote_keys`; always handed the public view of `problem`."""
        return self.__task.vote_keys(problem.public_view(), answers)

    def __repr__(self) -> str:
        return f"TaskView({self.name!r})"


class MeteredSearchContext:
    """The runner's `SearchContext` (prmbench.interfaces): everything a strategy may do while
    searching one problem, metered.

    Strategies call `generate`/`sample_full` for text and `score` for rewards, and ask
    `exhausted()` whether the budget allows more. The meter counts every call, cached or not.
    `calls` is a `ModelCalls` (or a scheduler's `CoalescedCalls` under --concurrency);
    everything beyond the Protocol is private. `aggregation` (default: the reward model's own)
    is fixed for the search.
    """

    def __init__(self, calls: Any, rm: RewardModel, problem: Problem, budget: Budget,
                 aggregation: str | None = None):
        self._calls = calls
        self._task = TaskView(calls.task)
        self._rm = rm
        self._problem = problem.public_view()  # what the strategy sees
        self._graded_problem = problem  # the full problem, passed on only towards the grader
        self._budget = budget
        self._aggregation = aggregation or rm.aggregation
        self._meter = Meter(calls.policy.num_parameters, rm.num_parameters)
        self._rm_truncated = 0  # candidates the reward model could read only in part (RMOutput.truncated)

    @property
    def problem(self) -> Problem:
        """The public view of the problem searched."""
        return self._problem

    @property
    def task(self) -> TaskView:
        """The public view of the task (no grading)."""
        return self._task

    @property
    def budget(self) -> Budget:
        """The search's budget."""
        return self._budget

    @property
    def aggregation(self) -> str:
        """The step-score aggregation `score` applies."""
        return self._aggregation

    @property
    def policy_params(self) -> int:
        """The policy's parameter count (FLOPs = 2 x parameters x tokens)."""
        return self._meter.policy_params

    @property
    def rm_params(self) -> int:
        """The reward model's parameter count."""
        return self._meter.rm_params

    @property
    def max_tokens(self) -> int:
        """The run's --max-tokens: the longest sample `generate` draws."""
        return int(self._calls.gen.max_tokens)

    @property
    def spend(self) -> Spend:
        """What the search has consumed so far."""
        return self._meter.spend

    def exhausted(self) -> bool:
        """Whether the measured spend has reached any cap of the budget.

        Caps: `max_flops` on total FLOPs, `max_tokens` on generated policy tokens, `max_seconds`
        on model-call seconds. Strategies ask before every unit of work (a step expansion, a
        rollout, a sample), so a search overshoots by at most the unit in flight.
        """
        b, s = self._budget, self._meter.spend
        return (
            (b.max_flops is not None and s.flops >= b.max_flops)
            or (b.max_tokens is not None and s.generated_tokens >= b.max_tokens)
            or (b.max_seconds is not None and s.seconds >= b.max_seconds)
        )

    def headroom(self) -> dict[str, float]:
        """What the budget still affords, per cap it sets: {"flops" | "tokens" | "seconds": the cap
        minus the spend so far} (<= 0: that cap is reached; empty: an uncapped budget). Searches use
        it to size their next unit of work so that it does not start larger than the rest."""
        b, s = self._budget, self._meter.spend
        out: dict[str, float] = {}
        if b.max_flops is not None:
            out["flops"] = b.max_flops - s.flops
        if b.max_tokens is not None:
            out["tokens"] = float(b.max_tokens - s.generated_tokens)
        if b.max_seconds is not None:
            out["seconds"] = b.max_seconds - s.seconds
        return out

    def generate(self, prefix: str = "", n: int = 1, start: int = 0, stop: tuple[str, ...] = (),
                 max_tokens: int | None = None) -> list[Generation]:
        """Sample n continuations of `prefix` (sample indices start..start+n-1), metered; each of at
        most `max_tokens` tokens (default and upper limit: the run's --max-tokens)."""
        req = self._calls.request(self._problem, prefix=prefix, n=n, start=start, stop=stop, max_tokens=max_tokens)
        gens = self._calls.generate([req], [self._problem.id])[0]
        self._meter.charge_generations(gens)
        return gens

    def to_candidate(self, gen: Generation, prefix: str = "", sample_index: int | None = None) -> Candidate:
        """Wrap a full generation (after `prefix`) as an unscored Candidate."""
        text = prefix + gen.text
        return Candidate(
            steps=tuple(self._task.split_steps(text)),
            text=text,
            finish_reason=gen.finish_reason,
            completion_tokens=gen.completion_tokens,
            answer=self._task.extract_answer(text),
            sample_index=sample_index,
        )

    def sample_full(self, n: int, start: int = 0) -> list[Candidate]:
        """n independent full solutions: pool samples start..start+n-1 (shared across cells)."""
        gens = self.generate(n=n, start=start)
        return [self.to_candidate(g, sample_index=start + i) for i, g in enumerate(gens)]

    def score(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates with `step_scores` and aggregated `score` filled in, metered."""
        return self.score_with_flops(candidates)[0]

    def score_with_flops(self, candidates: Sequence[Candidate]) -> tuple[list[Candidate], list[float]]:
        """Like `score`, plus the reward-model FLOPs charged for each candidate."""
        outs = self._calls.score(self._rm, self._graded_problem, [c.steps for c in candidates],
                                texts=[c.text for c in candidates])
        self._meter.charge_scores(outs)
        self._rm_truncated += sum(o.truncated for o in outs)
        scored = [
            replace(c, step_scores=o.step_scores, score=aggregate(o.step_scores, self._aggregation))
            for c, o in zip(candidates, outs)
        ]
        return scored, [2.0 * self._meter.rm_params * o.tokens for o in outs]


SearchContext = MeteredSearchContext
"""The concrete context's former name (tests and plugins build it directly)."""
