"""Plain data objects that flow between prmbench's components.

Every arrow in the data flow (see README "Architecture") is one of these frozen dataclasses.
They hold no behaviour beyond small derived properties and JSON conversion, so any component
can be replaced without touching another one's internals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping, Sequence

FinishReason = Literal["stop", "length", "eos"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message of a policy prompt."""

    role: Role
    content: str


@dataclass(frozen=True)
class Problem:
    """One benchmark item as a task loaded it.

    `id` is the task's own id (for MATH-500 its `unique_id`). `question` is the text shown to the
    policy; `reference` the gold answer (math) or reference solution (code), used only by the
    grader and never shown to strategies; `metadata` holds task-specific fields (subject, level,
    public examples) as JSON-compatible values. `private_metadata` names the metadata keys that
    are as hidden as the reference (MATH-500's worked `solution`): strategies and reward models
    get `public_view()`, which has neither.
    """

    id: str
    task: str
    question: str
    reference: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    private_metadata: tuple[str, ...] = field(default=(), hash=False, compare=False)

    @property
    def is_public(self) -> bool:
        """Whether this problem holds nothing hidden (no reference, no private metadata)."""
        return self.reference is None and not self.private_metadata

    def public_view(self) -> "Problem":
        """The problem as strategies and reward models see it: no reference, no private metadata.

        Only the task's grader reads the full problem (the oracle reward model only through the
        grader, see `prmbench.context.ModelCalls.score`).
        """
        if self.is_public:
            return self
        hidden = set(self.private_metadata)
        return Problem(id=self.id, task=self.task, question=self.question, reference=None,
                       metadata={k: v for k, v in self.metadata.items() if k not in hidden})


@dataclass(frozen=True)
class GenRequest:
    """A request for `n` samples from a policy.

    The policy renders `messages` with its chat template, appends `prefix` as the start of the
    assistant's answer (step-wise generation continues a partial solution this way) and samples
    continuations. `seed` fixes the randomness of sample 0; sample i uses `seed + i`, so one
    request for n samples returns exactly what n requests for one sample each would.
    `sample_index` is the position of sample 0 in the problem's sample pool (sample i is pool
    sample `sample_index + i`); backends that serve stored generations use it.
    """

    messages: tuple[Message, ...]
    prefix: str = ""
    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0
    sample_index: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form, used for cache keys and records."""
        d = asdict(self)
        d["messages"] = [asdict(m) for m in self.messages]
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Generation:
    """One sampled continuation.

    `text` is cut before the stop string that ended it (the stop string itself is in
    `stop_string`); `finish_reason` is "stop" (a stop string), "eos" (the model's end token) or
    "length" (max_tokens reached: a truncated text, never a finished solution).
    `prompt_tokens` counts the rendered prompt including the prefix; `completion_tokens` counts
    the generated tokens exactly, including any tokens of a stop string that was cut away.
    `seconds` is the wall time attributed to producing this sample.
    """

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    seed: int = 0
    stop_string: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Generation":
        """Inverse of `to_json`."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class RMOutput:
    """A reward model's verdict on one candidate: one score in [0, 1] per step.

    An outcome reward model returns a single score (for the last step). `tokens` is the number
    of tokens the reward model processed for this candidate (for the compute meter).
    """

    step_scores: tuple[float, ...]
    tokens: int = 0
    seconds: float = 0.0
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form."""
        d = asdict(self)
        d["step_scores"] = list(self.step_scores)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RMOutput":
        """Inverse of `to_json`."""
        return cls(
            step_scores=tuple(float(x) for x in d["step_scores"]),
            tokens=int(d.get("tokens", 0)),
            seconds=float(d.get("seconds", 0.0)),
            truncated=bool(d.get("truncated", False)),
        )


@dataclass(frozen=True)
class Candidate:
    """A (possibly partial) solution a strategy built: its steps, their scores and its cost."""

    steps: tuple[str, ...]
    text: str
    finish_reason: FinishReason
    completion_tokens: int
    step_scores: tuple[float, ...] = ()
    score: float | None = None
    answer: str | None = None
    sample_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form."""
        d = asdict(self)
        d["steps"] = list(self.steps)
        d["step_scores"] = list(self.step_scores)
        return d


@dataclass(frozen=True)
class Spend:
    """Measured compute of one search (or of the whole run, when summed).

    FLOPs follow the usual estimate 2 x parameters x tokens, per model: policy FLOPs over
    prompt + generated tokens, reward-model FLOPs over the tokens it read.
    """

    prompt_tokens: int = 0
    generated_tokens: int = 0
    rm_tokens: int = 0
    policy_calls: int = 0
    rm_calls: int = 0
    seconds: float = 0.0
    policy_flops: float = 0.0
    rm_flops: float = 0.0

    @property
    def flops(self) -> float:
        """Total FLOPs of policy and reward model."""
        return self.policy_flops + self.rm_flops

    def __add__(self, other: "Spend") -> "Spend":
        return Spend(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form, with the derived total `flops`."""
        d = asdict(self)
        d["flops"] = self.flops
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Spend":
        """Inverse of `to_json` (the derived `flops` is recomputed; missing entries read as 0)."""
        return cls(**{f.name: type(f.default)(d.get(f.name) or 0) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class SearchResult:
    """What a strategy returns: every candidate it considered and the one it chose.

    `tree` is the search tree of a step-level search (prmbench.strategies.tree; None when the
    strategy records none); the runner stores it in the cell's trees.jsonl, not in the record.
    """

    candidates: tuple[Candidate, ...]
    chosen: int | None
    info: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    tree: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def chosen_candidate(self) -> Candidate | None:
        """The selected candidate, or None when the strategy produced nothing."""
        return None if self.chosen is None else self.candidates[self.chosen]


@dataclass(frozen=True)
class Grade:
    """The task's verdict on one final answer."""

    correct: bool
    details: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (as cached and recorded)."""
        return {"correct": bool(self.correct), "details": dict(self.details)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Grade":
        """Inverse of `to_json`."""
        return cls(correct=bool(d["correct"]), details=dict(d.get("details") or {}))


@dataclass(frozen=True)
class Budget:
    """The compute allowance of one search.

    `n` is the budget value and `unit` its unit (see prmbench.budgets): with unit "n" (compute
    matched) or "nominal", strategies size themselves by `n` (best-of-N draws N samples); with
    an explicit cap ("tokens", "flops", "seconds") they draw until the meter says stop. The
    meter enforces `max_flops` (FLOPs), `max_tokens` (generated policy tokens) and
    `max_seconds` (model-call seconds) where they are set.
    """

    n: int
    unit: str = "n"
    max_flops: float | None = None
    max_tokens: int | None = None
    max_seconds: float | None = None

    @property
    def capped(self) -> bool:
        """Whether the budget is an explicit cap (tokens | flops | seconds), not a sample count."""
        return self.unit in ("tokens", "flops", "seconds")


@dataclass(frozen=True)
class Record:
    """One line of a cell's samples file: a problem, the search outcome and its grade.

    `spend` is the measured compute of the search; `allowance_flops` the FLOPs it was allowed
    (units n and flops; for nominal the best-of-N compute it is compared with; None for the
    tokens and seconds caps, whose allowance is `budget` itself).
    """

    problem_id: str
    task: str
    rm: str
    strategy: str
    budget: int
    seed: int
    correct: bool
    answer: str | None
    chosen_text: str | None
    n_candidates: int
    spend: Spend
    grade_details: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    budget_unit: str = "n"
    allowance_flops: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (one samples-file line)."""
        d = asdict(self)
        d["spend"] = self.spend.to_json()
        d["grade_details"] = dict(self.grade_details)
        d["info"] = dict(self.info)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Record":
        """A samples-file line as a Record (KeyError without `problem_id`). Absent fields take
        neutral defaults (empty names, budget 0, no spend), as readers of runs written before
        them (budget_unit, allowance_flops) need."""
        allowance = d.get("allowance_flops")
        return cls(problem_id=str(d["problem_id"]), task=str(d.get("task", "")), rm=str(d.get("rm", "")),
                   strategy=str(d.get("strategy", "")), budget=int(d.get("budget") or 0), seed=int(d.get("seed") or 0), correct=bool(d.get("correct")),
                   answer=d.get("answer"), chosen_text=d.get("chosen_text"), n_candidates=int(d.get("n_candidates") or 0),
                   spend=Spend.from_json(d.get("spend") or {}), grade_details=dict(d.get("grade_details") or {}),
                   info=dict(d.get("info") or {}), budget_unit=str(d.get("budget_unit") or "n"),
                   allowance_flops=None if allowance is None else float(allowance))


def as_messages(items: Sequence[Mapping[str, str] | Message]) -> tuple[Message, ...]:
    """Convert a list of {'role','content'} dicts (or Messages) to a tuple of Messages."""
    out = []
    for m in items:
        out.append(m if isinstance(m, Message) else Message(role=m["role"], content=m["content"]))  # type: ignore[arg-type]
    return tuple(out)
