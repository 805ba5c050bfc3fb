"""`CodeTask`: the shared base of prmbench's code-generation tasks.

A code task asks the policy for a complete Python function or program in a fenced
```` ```python ```` block, extracts that program, and grades it by running it in
`prmbench.sandbox` (created lazily, once per task object, closed by `close`). Comparison of
outputs always happens on the trusted (host) side; the sandboxed side only runs code.

What a subclass provides:

* `load`, `grade` (as every `Task`), and
* `public_outcomes(problem, codes)`: for each program, a list of JSON-compatible observations
  of its behaviour on the problem's PUBLIC examples only (examples a user can see in the
  prompt, never hidden tests), each paired with whether the example passed. The base class
  turns those into `vote_keys` (behaviour fingerprints) and `public_pass_fraction` (the score
  of the ``exec_public`` reward model).

Optionally `prompt_prefix(problem)`: the text a HumanEval-style completion continues (the
function signature and docstring). When set, `full_program(problem, code)` (what grading,
voting and `public_pass_fraction` run) prepends it to an answer that is only a function body
(see `full_program` for the exact rule); `extract_answer` itself has no problem at hand and
returns the code as written.

Steps for PRM scoring (task option ``step_split``, default ``"blank_lines"``): a solution text
is split into blocks separated by one or more blank lines, exactly as the math tasks do; for
code this puts each top-level function / logical paragraph of code in its own step. The only
other value, ``"none"``, keeps the whole solution as one step (for outcome-style scoring).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ClassVar, Sequence, TypeVar

from prmbench.errors import ConfigError
from prmbench.interfaces import Task
from prmbench.types import Grade, Message, Problem

T = TypeVar("T")
R = TypeVar("R")

#: Values of the ``step_split`` option.
STEP_SPLITS = ("blank_lines", "none")

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Think step by step, separating consecutive steps with a "
    "blank line, and end with the complete solution in a single ```python code block."
)

_FENCE_PY = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\r?\n(.*?)(?:```|\Z)", re.S | re.I)
_FENCE_ANY = re.compile(r"```[^\n`]*\r?\n(.*?)(?:```|\Z)", re.S)
_DEF_OR_IMPORT = re.compile(r"^(?:async\s+def|def|class|import|from)\s", re.M)


def normalise_code(code: str) -> str:
    """Code with comment-only lines, trailing whitespace and blank lines removed.

    Used by `CodeTask.answer_key` / `same_answer` (voting fallback); never for grading.
    """
    out = []
    for line in code.replace("\r\n", "\n").split("\n"):
        stripped = line.rstrip()
        if not stripped.strip() or stripped.lstrip().startswith("#"):
            continue
        out.append(stripped)
    return "\n".join(out)


def behaviour_fingerprint(observations: Sequence[Any]) -> str:
    """sha256 (hex, 16 chars) of the JSON form of a program's observed behaviour."""
    blob = json.dumps(list(observations), sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class CodeTask(Task):
    """Base class of the code tasks (domain ``"code"``): prompting, extraction, steps, sandbox.

    Args (for subclasses to pass through):
        step_split: ``"blank_lines"`` (default) or ``"none"``; see the module docstring.
        isolation, allow_unsafe, workers: Passed to `prmbench.sandbox.Sandbox`, which is
            created on first use (`sandbox`) and stopped by `close`.

    Public API on top of `Task`: `sandbox`, `public_pass_fraction(problem, code)`,
    `vote_keys(problem, answers)`, `close()`; subclasses implement `public_outcomes`.
    """

    domain: ClassVar[str] = "code"
    #: Prompt text asking for the solution format; subclasses may override.
    system_prompt: ClassVar[str] = SYSTEM_PROMPT

    def __init__(
        self,
        step_split: str = "blank_lines",
        isolation: str = "auto",
        allow_unsafe: bool = False,
        workers: int | None = None,
    ) -> None:
        if step_split not in STEP_SPLITS:
            raise ConfigError(f"{self.name or type(self).__name__}: step_split must be one of "
                              f"{', '.join(STEP_SPLITS)}, got {step_split!r}")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"{self.name or type(self).__name__}: workers must be a positive integer, got {workers!r}")
        self.step_split = step_split
        self.isolation = isolation
        self.allow_unsafe = bool(allow_unsafe)
        self.workers = workers
        self._sandbox: Any = None
        self._sandbox_lock = threading.Lock()

    # -- identity ----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Arguments that affect results (the sandbox level is recorded per grade instead)."""
        return {"step_split": self.step_split}

    # -- prompting ---------------------------------------------------------------------------
    def prompt_prefix(self, problem: Problem) -> str | None:
        """Code a bare-body completion continues (HumanEval: signature + docstring), or None."""
        return None

    def user_prompt(self, problem: Problem) -> str:
        """The user message; subclasses override to add the starter code or examples."""
        return problem.question.strip()

    def prompt(self, problem: Problem) -> tuple[Message, ...]:
        """A system message with the answer format and the problem as the user message."""
        return (Message(role="system", content=self.system_prompt),
                Message(role="user", content=self.user_prompt(problem)))

    # -- steps -------------------------------------------------------------------------------
    def split_steps(self, text: str) -> list[str]:
        """Blank-line separated blocks (``step_split="blank_lines"``) or one step (``"none"``)."""
        if self.step_split == "none":
            return [text.strip("\n").rstrip()] if text.strip() else []
        return super().split_steps(text)

    # -- answers -----------------------------------------------------------------------------
    @staticmethod
    def extract_code(text: str) -> str | None:
        """The program in `text`: the last ```` ```python ```` block, else the last fenced block of
        any language, else the whole text (an unclosed final fence counts as closed). None when
        the result is empty."""
        text = text or ""
        blocks = _FENCE_PY.findall(text) or _FENCE_ANY.findall(text)
        code = blocks[-1] if blocks else text
        return code if code.strip() else None

    def extract_answer(self, text: str) -> str | None:
        """The program of a solution text: `extract_code(text)` (see there).

        `extract_answer` has no problem at hand, so a HumanEval-style answer that is only a
        function body is returned as is; `full_program(problem, code)` (used by grading, voting
        and `public_pass_fraction`) prepends the prompt to it.
        """
        return self.extract_code(text)

    def full_program(self, problem: Problem, code: str) -> str:
        """The program to run for an extracted answer: the bare-body rule applied.

        Rule: when the task has a `prompt_prefix` (HumanEval: signature + docstring) and `code`
        is a bare function body (`is_bare_body`: it does not define the entry point, has no
        unindented ``def``/``class``/``import``/``from`` line and its first line is indented),
        the result is ``prefix + code`` (HumanEval's ``prompt + completion``). Otherwise, `code`
        unchanged (a complete function definition).
        """
        prefix = self.prompt_prefix(problem)
        if prefix and is_bare_body(code, str(problem.metadata.get("entry_point") or "")):
            return prefix.rstrip("\n") + "\n" + code if not prefix.endswith("\n") else prefix + code
        return code

    def extract_program(self, problem: Problem, text: str) -> str | None:
        """`full_program` of `extract_answer(text)` (None when the text has no code)."""
        code = self.extract_answer(text)
        return None if code is None else self.full_program(problem, code)

    def answer_key(self, answer: str) -> str:
        """The code without comments, blank lines and trailing whitespace."""
        return normalise_code(answer)

    def same_answer(self, a: str, b: str) -> bool:
        """Equal normalised code (voting fallback only; `vote_keys` compares behaviour)."""
        return normalise_code(a) == normalise_code(b)

    # -- sandbox -----------------------------------------------------------------------------
    @property
    def sandbox(self) -> Any:
        """The task's `prmbench.sandbox.Sandbox`, created on first use."""
        with self._sandbox_lock:
            if self._sandbox is None:
                from prmbench.sandbox import Sandbox

                self._sandbox = Sandbox(isolation=self.isolation, workers=self.workers,
                                        allow_unsafe=self.allow_unsafe)
            return self._sandbox

    def map_on_slots(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items` in order, one thread per sandbox slot (each call runs in the sandbox)."""
        workers = max(1, int(getattr(self.sandbox, "workers", 1) or 1))
        if workers == 1 or len(items) < 2:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def grade_many(self, items: Sequence[tuple[Problem, str]]) -> list[Grade]:
        """Grade many (problem, completion) pairs in parallel, one thread per sandbox slot."""
        return self.map_on_slots(lambda pc: self.grade(*pc), list(items))

    def close(self) -> None:
        """Stop the sandbox workers (a later use starts a new sandbox)."""
        with self._sandbox_lock:
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None

    # -- public examples ---------------------------------------------------------------------
    def public_outcomes(self, problem: Problem, codes: Sequence[str]) -> list[list[tuple[bool | None, Any]]]:
        """For each program, ``(passed, observation)`` per public example, in order.

        `observation` is JSON-compatible and describes what the program did (its typed output
        or its failure kind) so that equal observations mean equal behaviour. `passed` is None
        for an example shown without a checkable value (it only shapes `vote_keys`).
        Subclasses implement it; only public examples may be used.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement public_outcomes")

    def public_pass_fraction(self, problem: Problem, code: str | None) -> float:
        """Fraction of the public examples `code` passes (0.0 without code or examples)."""
        if not code:
            return 0.0
        checked = [passed for passed, _ in self.public_outcomes(problem, [code])[0] if passed is not None]
        if not checked:
            return 0.0
        return sum(1 for passed in checked if passed) / len(checked)

    def vote_keys(self, problem: Problem, answers: Sequence[str]) -> list[str] | None:
        """A behaviour fingerprint per program: sha256 of its typed outputs/errors on the
        public examples (never hidden tests). Programs without code share one key. None (vote
        by `same_answer`, i.e. normalised code) when the problem shows no public example."""
        codes = [a for a in answers if a]
        unique = list(dict.fromkeys(codes))
        runs = dict(zip(unique, self.public_outcomes(problem, unique))) if unique else {}
        if unique and not any(runs.values()):
            return None
        keys = []
        for a in answers:
            if not a:
                keys.append(behaviour_fingerprint(["<no code>"]))
            else:
                keys.append(behaviour_fingerprint([obs for _, obs in runs[a]]))
        return keys


def is_bare_body(code: str, entry_point: str = "") -> bool:
    """Whether `code` is only a function body (HumanEval completion) rather than a definition.

    True when it does not define `entry_point` (``def entry_point(``), has no unindented
    ``def``/``class``/``import``/``from`` line, and its first non-blank line is indented.
    """
    if entry_point and re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return False
    if _DEF_OR_IMPORT.search(code):
        return False
    first = next((ln for ln in code.split("\n") if ln.strip()), "")
    return first[:1] in (" ", "\t")
