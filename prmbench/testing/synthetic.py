"""A synthetic environment with known per-step correctness: task, policy and reward model.

Registered as the plugin `synthetic` (entry point in pyproject.toml), so it runs like any other
component and exercises the third-party plugin path:

    prmbench run --tasks synthetic --policy synthetic --rm synthetic_prm,oracle,random \\
                 --strategy best_of_n,beam_search,mcts --budget 4,16

Everything is instant and deterministic, so expected behaviour is known in closed form:

- Task `synthetic`: problem i asks for a number; its question carries a header
  `[synthetic id=I steps=L p_step=P answer=A]` that the synthetic policy reads. A solution has L
  steps; step j is correct with probability P when all earlier steps were correct and wrong
  otherwise (errors propagate), so a full sample is correct with probability P**L
  (`metadata["p_solve"]`). The last step states `\\boxed{answer}`: A when every step was correct,
  else one of three wrong numbers. Steps are blank-line separated; a correct step ends with the
  marker `[ok]`, a wrong one with `[slip]`.
- Policy `synthetic`: produces that token stream (a token is a word, a step delimiter or eos),
  honouring prefix, stop strings, max_tokens, seeds (sample i uses seed + i; the draw for a step
  hashes the seed, the prefix and the step number) and temperature 0 (greedy: the more likely
  outcome). `ramble` is the probability that a step never ends (it hits max_tokens: a truncated
  step). It reports token counts (words) and `num_parameters`, so FLOPs budgets are real, and
  optionally simulated seconds per generated token.
- Reward model `synthetic_prm`: a process reward model that scores step k 1.0 when steps 1..k
  are all correct, else 0.0 (a perfect PRM); with `noise` q, each score is replaced with
  probability q by a seeded uniform draw. It reads question + steps as tokens for the meter.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar, Iterator, Sequence

from prmbench import hookimpl
from prmbench.errors import ConfigError, DataError
from prmbench.interfaces import Policy, RewardModel, Task
from prmbench.types import GenRequest, Generation, Grade, Message, Problem, RMOutput

HEADER = re.compile(r"\[synthetic id=(\S+) steps=(\d+) p_step=([0-9.]+) answer=(-?\d+)\]")
OK, SLIP = "[ok]", "[slip]"
DELIMITER = "\n\n"
_WORDS = ("so", "then", "thus", "we", "get", "compute", "hence", "note", "next", "check")
_TOKEN = re.compile(r"\n\n|\S+")
_RAMBLE_TOKENS = 1 << 20  # a rambling step is longer than any max_tokens


def uniform(*parts: Any) -> float:
    """A deterministic uniform number in [0, 1) from a hash of `parts`."""
    h = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64


def count_tokens(text: str) -> int:
    """Synthetic token count: words plus blank-line delimiters."""
    return len(_TOKEN.findall(text))


def step_correct(step: str) -> bool:
    """Whether a synthetic step is a correct one (ends with the `[ok]` marker)."""
    return step.rstrip().endswith(OK)


class SyntheticTask(Task):
    """Synthetic problems with known per-step correctness probabilities (see module docstring).

    `n_problems` problems of `n_steps` steps; `p_step` fixes every problem's per-step
    probability, or (None) problem i gets a seeded value in [0.55, 0.95).
    """

    domain: ClassVar[str] = "math"
    version: ClassVar[str] = "1"
    split: ClassVar[str] = "generated"  # made up on the spot: labels of it may train any PRM

    def __init__(self, n_problems: int = 100, n_steps: int = 4, p_step: float | None = None, seed: int = 0):
        if not isinstance(n_problems, int) or n_problems < 1 or not isinstance(n_steps, int) or n_steps < 1:
            raise ConfigError("synthetic task: n_problems and n_steps must be positive integers "
                              "(e.g. --task-args n_problems=200,n_steps=4)")
        if p_step is not None and not 0 <= float(p_step) <= 1:
            raise ConfigError(f"synthetic task: p_step must lie in [0, 1] (got {p_step!r})")
        self.n_problems, self.n_steps, self.seed = n_problems, n_steps, int(seed)
        self.p_step = None if p_step is None else float(p_step)

    def config(self) -> dict[str, Any]:
        """Size, steps, probability and seed."""
        return {"n_problems": self.n_problems, "n_steps": self.n_steps, "p_step": self.p_step, "seed": self.seed}

    def load(self) -> list[Problem]:
        """The problems, each with its p_step, n_steps and p_solve in metadata."""
        out = []
        for i in range(self.n_problems):
            p = self.p_step if self.p_step is not None else round(0.55 + 0.4 * uniform("p", self.seed, i), 4)
            answer = 10 + int(uniform("a", self.seed, i) * 990)
            question = f"[synthetic id={i} steps={self.n_steps} p_step={p} answer={answer}]"
            out.append(Problem(id=f"synthetic/{i}", task="synthetic", question=question, reference=str(answer),
                               metadata={"p_step": p, "n_steps": self.n_steps, "p_solve": p ** self.n_steps}))
        return out

    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """The question as one user message."""
        return (Message("user", problem.question),)

    def extract_answer(self, text: str) -> str | None:
        """The last \\boxed{...} number."""
        found = re.findall(r"\\boxed\{(-?\d+)\}", text)
        return found[-1] if found else None

    def same_answer(self, a: str, b: str) -> bool:
        """Numbers are equal as strings."""
        return a.strip() == b.strip()

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the last boxed number is the reference."""
        ans = self.extract_answer(completion)
        return Grade(correct=ans is not None and ans == problem.reference, details={"extracted": ans})


def _parse_header(messages: Sequence[Message]) -> tuple[str, int, float, int]:
    for m in reversed(messages):
        found = HEADER.search(m.content)
        if found:
            return found.group(1), int(found.group(2)), float(found.group(3)), int(found.group(4))
    raise DataError("the synthetic policy only answers synthetic problems (a question with a "
                    "`[synthetic id=.. steps=.. p_step=.. answer=..]` header): use it with --tasks synthetic")


class SyntheticPolicy(Policy):
    """The synthetic environment's policy (see module docstring): instant, seeded, exact token counts."""

    version: ClassVar[str] = "1"

    def __init__(self, num_parameters: int = 10_000_000, step_tokens: int = 8, ramble: float = 0.0,
                 seconds_per_token: float = 0.0):
        if not isinstance(step_tokens, int) or step_tokens < 3:
            raise ConfigError(f"synthetic policy: step_tokens must be an integer >= 3 (got {step_tokens!r})")
        if not 0 <= float(ramble) <= 1 or float(seconds_per_token) < 0:
            raise ConfigError("synthetic policy: ramble must lie in [0, 1] and seconds_per_token be >= 0")
        self._params = int(num_parameters)
        self.step_tokens, self.ramble, self.seconds_per_token = step_tokens, float(ramble), float(seconds_per_token)

    @property
    def num_parameters(self) -> int:
        """The parameter count the meter charges (an argument: nothing is computed)."""
        return self._params

    def config(self) -> dict[str, Any]:
        """All arguments."""
        return {"num_parameters": self._params, "step_tokens": self.step_tokens, "ramble": self.ramble,
                "seconds_per_token": self.seconds_per_token}

    def _tokens(self, req: GenRequest, seed: int) -> Iterator[str | None]:
        """The continuation's tokens (None = eos) after `req.prefix`."""
        pid, n_steps, p, answer = _parse_header(req.messages)
        blocks = req.prefix.split(DELIMITER)
        done = blocks[:-1]  # complete steps; the last block is the current step (maybe empty)
        ok = all(step_correct(b) for b in done)
        j = len(done) + 1
        partial = blocks[-1].strip()

        if j > n_steps:  # the prefix already holds every step
            yield None
            return

        def draw(tag: str, k: int) -> float:
            return 0.5 if req.temperature == 0 else uniform(tag, seed, req.prefix, k, pid)

        while j <= n_steps:
            good = ok and draw("ok", j) < p
            if not partial:
                yield "Step"
                yield f" {j}:"
            if draw("ramble", j) < self.ramble:
                for t in range(_RAMBLE_TOKENS):
                    yield " " + _WORDS[int(draw(f"w{t}", j) * len(_WORDS))]
            if j == n_steps:
                wrong = answer + 1 + int(draw("wrong", j) * 3)
                yield f" answer \\boxed{{{answer if good else wrong}}}"
            else:
                for t in range(self.step_tokens - 3):
                    yield " " + _WORDS[int(draw(f"w{t}", j) * len(_WORDS))]
            yield " " + (OK if good else SLIP)
            ok, partial, j = good, "", j + 1
            yield DELIMITER if j <= n_steps else None

    def _one(self, req: GenRequest, seed: int) -> Generation:
        text, used, finish, stop_hit = "", 0, "length", None
        for tok in self._tokens(req, seed):
            if used >= req.max_tokens:
                break
            used += 1
            if tok is None:
                finish = "eos"
                break
            text += tok
            hits = [(text.find(s), s) for s in req.stop if s and s in text]
            if hits:
                pos, stop_hit = min(hits)
                text, finish = text[:pos], "stop"
                break
        prompt = "\n\n".join(m.content for m in req.messages) + "\n\n" + req.prefix
        return Generation(text=text, finish_reason=finish, prompt_tokens=count_tokens(prompt),  # type: ignore[arg-type]
                          completion_tokens=used, seed=seed, stop_string=stop_hit,
                          seconds=self.seconds_per_token * used)

    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str] | None = None) -> list[list[Generation]]:
        """Each request's n samples, sample i seeded with seed + i."""
        return [[self._one(r, r.seed + i) for i in range(r.n)] for r in requests]


class SyntheticPRM(RewardModel):
    """The synthetic environment's process reward model: perfect, or noisy with probability `noise`."""

    kind: ClassVar[str] = "prm"
    version: ClassVar[str] = "1"

    def __init__(self, noise: float = 0.0, num_parameters: int = 1_000_000, seed: int = 0, aggregation: str = "last"):
        if not 0 <= float(noise) <= 1:
            raise ConfigError(f"synthetic_prm: noise must lie in [0, 1] (got {noise!r})")
        self.noise, self._params, self.seed, self.aggregation = float(noise), int(num_parameters), int(seed), aggregation

    @property
    def num_parameters(self) -> int:
        """The parameter count the meter charges."""
        return self._params

    def config(self) -> dict[str, Any]:
        """All arguments."""
        return {"noise": self.noise, "num_parameters": self._params, "seed": self.seed, "aggregation": self.aggregation}

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """Step k scores 1.0 when steps 1..k are correct, else 0.0 (noisy with probability `noise`)."""
        out = []
        for steps in candidates:
            scores, ok = [], True
            for k, step in enumerate(steps):
                ok = ok and step_correct(step)
                key = (self.seed, problem.id, *steps[: k + 1])
                value = uniform("v", *key) if uniform("noise", *key) < self.noise else float(ok)
                scores.append(value)
            tokens = count_tokens(problem.question) + sum(count_tokens(s) for s in steps)
            out.append(RMOutput(step_scores=tuple(scores), tokens=tokens))
        return out


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    """The synthetic task."""
    register("synthetic", "prmbench.testing.synthetic:SyntheticTask",
             summary="synthetic problems with known per-step correctness (instant; for tests)")


@hookimpl
def register_policies(register):  # type: ignore[no-untyped-def]
    """The synthetic policy."""
    register("synthetic", "prmbench.testing.synthetic:SyntheticPolicy",
             summary="instant seeded policy of the synthetic task (known per-step correctness)")


@hookimpl
def register_reward_models(register):  # type: ignore[no-untyped-def]
    """The synthetic PRM."""
    register("synthetic_prm", "prmbench.testing.synthetic:SyntheticPRM",
             summary="perfect (or noisy) PRM of the synthetic task")
