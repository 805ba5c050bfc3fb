"""Concurrent search: up to K searches of a cell in flight, their model calls coalesced.

Each search runs in its own thread, unchanged: its `SearchContext` talks to a `CoalescedCalls`
instead of the run's `ModelCalls`. A generate, score or grade call of a search thread is queued
and the thread blocks. The driving (main) thread waits until every search in flight is blocked,
then issues the queued requests as one backend call per kind (one `ModelCalls.generate` for all
generation requests, one `ModelCalls.score_many` per reward model, one `grade_many`), ordered by
problem, and hands each thread its share. Only the main thread ever touches the policy, the
reward models, the task's grader and the cache, so no backend needs to be thread-safe, and
Ctrl-C lands where it always did.

Because the Policy and RewardModel contracts are batch invariant (sample i with seed s is the
same whatever else is in the batch; a candidate's scores do not depend on its batch mates), a
search returns the same result at any concurrency; only measured seconds differ, which is why
`--budget-unit seconds` cells are not reproducible across concurrency levels (nor across runs).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

from prmbench.context import GenParams, ModelCalls
from prmbench.interfaces import Policy, RewardModel, Task
from prmbench.types import GenRequest, Generation, Grade, Problem, RMOutput

T = TypeVar("T")
P = TypeVar("P")

_POLL_SECONDS = 0.5
"""How often the waiting main thread wakes up (so Ctrl-C is handled promptly everywhere)."""


class _Cancelled(BaseException):
    """Raised in a search thread whose run was interrupted: the thread unwinds and ends."""


@dataclass
class _Job:
    """One blocked call of a search thread."""

    kind: str  # "generate" | "score" | "grade"
    order: int  # the problem's position: batches are assembled in problem order
    args: tuple[Any, ...]
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None


class CoalescedCalls:
    """What one search thread uses in place of `ModelCalls`: same methods, calls queued to the
    scheduler. `request` is local (it only builds a GenRequest)."""

    def __init__(self, scheduler: "Scheduler", order: int):
        self._scheduler = scheduler
        self._order = order
        self.task: Task = scheduler.calls.task
        self.policy: Policy = scheduler.calls.policy

    @property
    def gen(self) -> GenParams:
        """The run's sampling settings (see `ModelCalls.gen`)."""
        return self._scheduler.calls.gen

    def request(self, problem: Problem, **options: Any) -> GenRequest:
        """See `ModelCalls.request` (local: it only builds the request)."""
        return self._scheduler.calls.request(problem, **options)

    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str]) -> list[list[Generation]]:
        """See `ModelCalls.generate`; served from the next coalesced backend call."""
        return self._scheduler.submit("generate", self._order, list(requests), list(problem_ids))  # type: ignore[no-any-return]

    def score(self, rm: RewardModel, problem: Problem, candidates: Sequence[Sequence[str]],
              texts: Sequence[str] | None = None) -> list[RMOutput]:
        """See `ModelCalls.score`; served from the next coalesced reward-model call."""
        return self._scheduler.submit("score", self._order, rm, problem, [list(c) for c in candidates],  # type: ignore[no-any-return]
                                      None if texts is None else list(texts))

    def grade_many(self, items: Sequence[tuple[Problem, str]]) -> list[Grade]:
        """See `ModelCalls.grade_many`; served from the next coalesced grading call."""
        return self._scheduler.submit("grade", self._order, list(items))  # type: ignore[no-any-return]


class Scheduler:
    """Runs searches in threads, up to `concurrency` at once, coalescing their model calls.

    One scheduler serves one `map` (one cell's problems); after it ends or is interrupted,
    threads still running are cancelled at their next model call.
    """

    def __init__(self, calls: ModelCalls, concurrency: int):
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.calls = calls
        self.concurrency = concurrency
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._active = 0
        self._aborted = False
        self.batches = 0  # coalesced backend calls issued (for benchmarks and tests)

    # -- search-thread side -------------------------------------------------------------------
    def submit(self, kind: str, order: int, *args: Any) -> Any:
        """Queue one call and block until the main thread has served it."""
        job = _Job(kind, order, args)
        with self._cond:
            if self._aborted:
                raise _Cancelled()
            self._pending.append(job)
            self._cond.notify_all()
            while not job.done:
                if self._aborted:
                    raise _Cancelled()
                self._cond.wait()
        if job.error is not None:
            raise job.error
        return job.result

    # -- main-thread side ---------------------------------------------------------------------
    def map(self, items: Sequence[P], work: Callable[[int, P, CoalescedCalls], T]) -> Iterator[tuple[int, T]]:
        """Run `work(i, item, calls)` for every item, up to `concurrency` at once; yields
        (i, result) in completion order. An exception in a search is raised here (after the
        other searches were cancelled); so is Ctrl-C."""
        outcomes: dict[int, _Outcome[T]] = {}
        started = 0
        threads: list[threading.Thread] = []

        def body(i: int) -> None:
            out: _Outcome[T] = _Outcome()
            try:
                out.value = work(i, items[i], CoalescedCalls(self, i))
            except _Cancelled:
                pass
            except BaseException as e:  # handed to the main thread, which raises it
                out.error = e
            with self._cond:
                self._active -= 1
                outcomes[i] = out
                self._cond.notify_all()

        try:
            while True:
                with self._cond:
                    while self._active < self.concurrency and started < len(items):
                        t = threading.Thread(target=body, args=(started,), daemon=True,
                                             name=f"prmbench-search-{started}")
                        self._active += 1
                        started += 1
                        t.start()
                        threads.append(t)
                    while not outcomes and not (self._pending and len(self._pending) == self._active):
                        if not self._active and started == len(items):
                            return
                        self._cond.wait(_POLL_SECONDS)
                    # Finished searches first: their successors start, and join the next batch,
                    # before it is issued; so batches do not depend on thread timing.
                    ready = dict(outcomes)
                    outcomes.clear()
                    batch: list[_Job] = []
                    if not ready and self._pending and len(self._pending) == self._active:
                        batch, self._pending = self._pending, []
                for i, out in sorted(ready.items()):
                    if out.error is not None:
                        raise out.error
                    yield i, out.value  # type: ignore[misc]
                if batch:
                    self._serve(batch)
        finally:
            with self._cond:
                self._aborted = bool(self._active) or self._aborted
                self._cond.notify_all()
            for t in threads:
                t.join(timeout=5.0)

    def _serve(self, batch: list[_Job]) -> None:
        """Issue the queued calls, one backend call per kind (per reward model for scores)."""
        batch.sort(key=lambda j: j.order)
        groups: dict[Any, list[_Job]] = {}
        for job in batch:
            key = (job.kind, id(job.args[0])) if job.kind == "score" else (job.kind,)
            groups.setdefault(key, []).append(job)
        for key, jobs in groups.items():
            try:
                results = self._call(key[0], jobs)
                for job, res in zip(jobs, results):
                    job.result = res
            except Exception as e:  # every search that asked gets the error; the main thread raises it
                for job in jobs:
                    job.error = e
            self.batches += 1
        with self._cond:
            for job in batch:
                job.done = True
            self._cond.notify_all()

    def _call(self, kind: str, jobs: list[_Job]) -> list[Any]:
        calls = self.calls
        if kind == "generate":
            reqs = [r for j in jobs for r in j.args[0]]
            pids = [p for j in jobs for p in j.args[1]]
            flat = iter(calls.generate(reqs, pids))
            return [[next(flat) for _ in j.args[0]] for j in jobs]
        if kind == "score":
            rm = jobs[0].args[0]
            return calls.score_many(rm, [(j.args[1], j.args[2], j.args[3]) for j in jobs])
        items = [it for j in jobs for it in j.args[0]]
        flat_grades = iter(calls.grade_many(items))
        return [[next(flat_grades) for _ in j.args[0]] for j in jobs]
