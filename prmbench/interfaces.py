"""The four plugin contracts: Task, Policy, RewardModel and Strategy; and what a strategy sees.

A plugin implements one of these base classes and registers a factory for it (see
prmbench.hookspecs). Components talk to each other only through these methods and the data
objects in prmbench.types. A strategy searches through a `SearchContext` (the Protocol below:
exactly what strategies may use), whose `task` is a `PublicTask`: step handling and answer
extraction, no grading and no references.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Protocol, Sequence

from prmbench.types import (Budget, Candidate, GenRequest, Generation, Grade, Message, Problem, RMOutput, SearchResult,
                            Spend)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-compatible configuration (for cache keys and cell ids)."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Component(ABC):
    """Common identity of every pluggable component.

    `name` is the spec the user gave (e.g. `best_of_n`, `hf:/models/tiny`), `config` the
    resolved arguments. `version` must change whenever anything that affects results changes;
    together they form the cache identity.
    """

    name: str = ""
    version: ClassVar[str] = "1"

    def config(self) -> dict[str, Any]:
        """The resolved arguments that affect results (JSON-compatible)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """Name, class, version and config: what results and cache keys record."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "version": self.version,
            "config": self.config(),
        }

    def cache_id(self) -> str:
        """A stable id for cache keys: changes when name, version or config change."""
        return f"{self.name}@{self.version}#{config_hash(self.identity())}"

    def close(self) -> None:
        """Release models, servers, sandboxes or files the component holds."""


class Task(Component):
    """A benchmark: loads problems, builds prompts, splits steps, extracts and grades answers.

    Subclasses set `domain` ("math" or "code") and implement `load`, `prompt`,
    `extract_answer`, `same_answer` and `grade`. Step splitting defaults to blank-line
    separated blocks.
    """

    domain: ClassVar[str] = "math"
    step_delimiter: ClassVar[str] = "\n\n"

    @abstractmethod
    def load(self) -> list[Problem]:
        """All problems of the task, in the data set's order."""

    def data_fingerprint(self, problems: Sequence[Problem]) -> str:
        """A hash of the loaded problems; runs on different data are never compared."""
        h = hashlib.sha256()
        for p in problems:
            h.update(json.dumps([p.id, p.question, p.reference], sort_keys=True).encode())
        return h.hexdigest()[:16]

    @abstractmethod
    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """The chat messages that ask the policy to solve `problem`."""

    def split_steps(self, text: str) -> list[str]:
        """Split a solution into steps: blocks separated by one or more blank lines.

        A block keeps its leading indentation (only surrounding blank lines and trailing
        whitespace go), so `join_steps(split_steps(text))` means the same as `text`, also for
        code, where indentation is syntax.
        """
        parts = [s.strip("\n").rstrip() for s in re.split(r"\n[ \t]*\n", text)]
        return [s for s in parts if s.strip()]

    def join_steps(self, steps: Sequence[str]) -> str:
        """Inverse of `split_steps` (up to whitespace)."""
        return self.step_delimiter.join(steps)

    @abstractmethod
    def extract_answer(self, text: str) -> str | None:
        """The final answer of a solution text, or None when it has none."""

    @abstractmethod
    def same_answer(self, a: str, b: str) -> bool:
        """Whether two extracted answers are equivalent (used for voting, never for grading)."""

    @abstractmethod
    def grade(self, problem: Problem, completion: str) -> Grade:
        """Grade a full solution text against the problem's hidden reference."""

    def grade_many(self, items: Sequence[tuple[Problem, str]]) -> list[Grade]:
        """`grade` for many (problem, completion) pairs, in order; tasks that can grade in
        parallel (the code tasks, on their sandbox slots) override it."""
        return [self.grade(problem, completion) for problem, completion in items]

    def answer_key(self, answer: str) -> str:
        """A cheap normalised form; answers with different keys may still be `same_answer`."""
        return answer.strip()

    def vote_keys(self, problem: Problem, answers: Sequence[str]) -> list[str] | None:
        """Exact voting keys for many answers at once, or None to vote by `same_answer`.

        Code tasks return a fingerprint of each program's behaviour on the problem's public
        examples (never its hidden tests), so programs that behave alike vote together.
        """
        return None


class Policy(Component):
    """A generation backend that turns GenRequests into Generations.

    `num_parameters` feeds the FLOPs estimate. `supports_stepwise` is False for backends that
    can only return whole stored solutions (replay).
    """

    supports_stepwise: ClassVar[bool] = True
    default_concurrency: ClassVar[int] = 1
    """Problems searched at once when `--concurrency` is not given: a backend that gains from
    bigger batches (or serves concurrent requests) sets more."""

    @property
    def num_parameters(self) -> int:
        """Parameter count of the policy model (0 when unknown or free)."""
        return 0

    @abstractmethod
    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str] | None = None) -> list[list[Generation]]:
        """For each request, its `n` samples in order (sample i seeded with `seed + i`).

        `problem_ids` (same length as `requests`) lets backends that serve stored
        generations find them; live backends ignore it.
        """

    def available_problem_ids(self) -> set[str] | None:
        """Problems this backend can serve (replay: those in its file); None means any."""
        return None

    @property
    def measures_seconds(self) -> bool:
        """Whether generations carry the wall seconds they took (False for stored ones), which a
        `--budget-unit seconds` cap needs."""
        return True



class RewardModel(Component):
    """Scores candidate solutions given as lists of canonical text steps.

    `kind` is "prm" (a score per step) or "orm" (one score for the whole solution);
    `aggregation` (last|min|prod|mean) turns step scores into a solution score.
    """

    kind: ClassVar[str] = "prm"
    aggregation: str = "last"

    @property
    def num_parameters(self) -> int:
        """Parameter count of the reward model (0 for free models such as the oracle)."""
        return 0

    @abstractmethod
    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """One RMOutput per candidate, with scores in [0, 1].

        In a run, `problem` is the public view (`Problem.public_view`): no reference, no
        private metadata.
        """

    def score_many(self, task: Task, items: Sequence[tuple[Problem, Sequence[Sequence[str]]]]) -> list[list[RMOutput]]:
        """`score` for several (problem, candidates) pairs at once, outputs per pair in order.

        Concurrent searches hand the reward model all their candidates in one call. Records must
        be the same at any concurrency, so an override may batch across problems only if a
        candidate's scores stay bit-identical whatever else is in the batch. The transformers
        engine (reward_models/hf_rm.py) keeps the default: its scores move in the last bits
        (~1e-7) with padding and batch mates, so it scores each problem's candidates as at
        concurrency 1 (the policy is where concurrent searches fill big batches).
        """
        return [self.score(task, problem, candidates) for problem, candidates in items]


class GraderRewardModel(RewardModel):
    """A reward model whose scores are the task's own verdicts (the oracle): a selection ceiling.

    In a run it never sees a reference: the runner grades each candidate's exact text with the
    task's grader (the same text, and the same cached verdict, as the final grading of a chosen
    candidate) and hands it only the verdicts (`from_grades`).
    """

    kind: ClassVar[str] = "orm"

    @abstractmethod
    def from_grades(self, grades: Sequence[Grade]) -> list[RMOutput]:
        """One RMOutput per verdict."""


class Strategy(Component):
    """A test-time search strategy: decides what to generate next and which answer to pick.

    It never counts its own spend: everything goes through `ctx` (metered policy and reward
    model). A strategy that needs only `pool_size(budget)` independent full samples (indices
    0..k-1) sets `uses_pool`, so the runner can generate one shared pool per problem for all
    budgets and all such strategies. A strategy that continues partial solutions (beam search,
    MCTS) sets `stepwise`, so the runner can refuse policies that serve only whole solutions.
    """

    uses_pool: ClassVar[bool] = False
    stepwise: ClassVar[bool] = False
    """True for strategies that generate step by step (need `Policy.supports_stepwise`)."""
    uses_rm: ClassVar[bool] = True
    """False for strategies that never score (majority vote): their cells get reward model `none`."""
    aggregation: str | None = None
    """How the context turns step scores into a candidate's score (last | min | prod | mean);
    None: the reward model's own. The runner makes each search's context with it."""

    def pool_size(self, budget: Budget) -> int:
        """How many independent full samples the search draws (pool strategies only)."""
        return budget.n

    @abstractmethod
    def search(self, problem: Problem, ctx: "SearchContext") -> SearchResult:  # noqa: F821 (defined below)
        """Run the search on one problem and return its candidates and choice.

        Searches of a cell run concurrently (`--concurrency`), each in its own thread, on this
        one object: keep per-search state local, never on `self`."""


class PublicTask(Protocol):
    """What a strategy may use of the task: step handling, answer extraction and voting keys.

    No grading and no references (a code task's hidden tests are looked up by problem id, so
    `grade` must stay with the runner).
    """

    name: str
    domain: str
    step_delimiter: str

    def split_steps(self, text: str) -> list[str]:
        """See `Task.split_steps`."""
        ...

    def join_steps(self, steps: Sequence[str]) -> str:
        """See `Task.join_steps`."""
        ...

    def extract_answer(self, text: str) -> str | None:
        """See `Task.extract_answer`."""
        ...

    def same_answer(self, a: str, b: str) -> bool:
        """See `Task.same_answer`."""
        ...

    def answer_key(self, answer: str) -> str:
        """See `Task.answer_key`."""
        ...

    def vote_keys(self, problem: Problem, answers: Sequence[str]) -> list[str] | None:
        """See `Task.vote_keys` (public examples only)."""
        ...


class SearchContext(Protocol):
    """Everything a strategy may use while searching one problem; every call is metered.

    `problem` is the public view, `task` a `PublicTask`, `budget` the search's budget,
    `aggregation` the step-score aggregation `score` applies (read-only). `spend` is what the
    search consumed so far (cached results charged as when computed); `policy_params` and
    `rm_params` price units of work (FLOPs = 2 x parameters x tokens); `max_tokens` is the run's
    per-sample token limit. The runner's implementation is `prmbench.context.MeteredSearchContext`.
    """

    @property
    def problem(self) -> Problem: ...
    @property
    def task(self) -> PublicTask: ...
    @property
    def budget(self) -> Budget: ...
    @property
    def aggregation(self) -> str: ...
    @property
    def spend(self) -> Spend: ...
    @property
    def policy_params(self) -> int: ...
    @property
    def rm_params(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...

    def exhausted(self) -> bool:
        """Whether the spend has reached any cap of the budget (ask before every unit of work)."""
        ...

    def headroom(self) -> dict[str, float]:
        """Per cap the budget sets, the cap minus the spend so far."""
        ...

    def generate(self, prefix: str = "", n: int = 1, start: int = 0, stop: tuple[str, ...] = (),
                 max_tokens: int | None = None) -> list[Generation]:
        """n continuations of `prefix` (sample indices start..start+n-1)."""
        ...

    def to_candidate(self, gen: Generation, prefix: str = "", sample_index: int | None = None) -> Candidate:
        """A full generation (after `prefix`) as an unscored Candidate."""
        ...

    def sample_full(self, n: int, start: int = 0) -> list[Candidate]:
        """Pool samples start..start+n-1 as Candidates."""
        ...

    def score(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates with step scores and aggregated score."""
        ...

    def score_with_flops(self, candidates: Sequence[Candidate]) -> tuple[list[Candidate], list[float]]:
        """Like `score`, plus the reward-model FLOPs charged for each candidate."""
        ...
