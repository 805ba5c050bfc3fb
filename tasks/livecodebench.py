"""LiveCodeBench code generation (``livecodebench/code_generation_lite``), graded in the sandbox.

Problems are contest problems from AtCoder, Codeforces (stdin/stdout programs) and LeetCode
(functional: a ``class Solution`` method). A completion's program is its last fenced code block;
it is correct when it passes every public and every hidden test, each run as a fresh sandboxed
process (`prmbench.sandbox`) and judged on the trusted side by the chosen comparator
(``strict``: LiveCodeBench's own rule, the default; ``float``: tolerant; see
`prmbench.tasks.lcb_grading`). Public tests alone drive `vote_keys` and `public_pass_fraction`,
so selection never sees the hidden tests. Data handling (release tags, date windows, the
pickle-safe decoding of hidden tests) is in `prmbench.tasks.lcb_data`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from prmbench.env import env_flag
from prmbench.errors import ConfigError, DataError
from prmbench.tasks.code_base import CodeTask
from prmbench.tasks.lcb_data import (
    HUB_REPO,
    TASK_NAME,
    RawProblem,
    TestCase,
    decode_test_cases,
    in_window,
    iter_jsonl,
    parse_date,
    parse_row,
    release_files,
)
from prmbench.tasks.lcb_grading import (
    COMPARATORS,
    functional_program,
    parse_functional_stdout,
    stdio_program,
    stripped_lines,
)
from prmbench.types import Grade, Problem

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

STDIN_FORMAT = (
    "Write a Python program that reads the input from standard input and writes the answer to standard "
    "output. Do not hard-code or test on the sample inputs: the program must read the input, solve the "
    "problem and print the answer. Put the whole program in the final ```python code block."
)
FUNCTIONAL_FORMAT = (
    "Complete the starter code below (implement the method of `class Solution`) and put the whole class "
    "in the final ```python code block.\n```python\n{starter}\n```"
)
#: Statuses a single test can end with, besides "passed".
TEST_FAILURES = ("wrong_answer", "runtime_error", "timeout", "memory", "output_limit", "sandbox_error")



def _fix_hint(release: str) -> str:
    return (
        f"Fix: pass a local copy with `--data-file {TASK_NAME}=PATH` (a JSONL or JSONL.gz file of "
        f"livecodebench/code_generation_lite rows), or set PRMBENCH_DATA_DIR to a folder holding "
        f"<dir>/{TASK_NAME}/{release}.jsonl (or .jsonl.gz), or the upstream files "
        f"<dir>/{TASK_NAME}/{{{','.join(release_files(release))}}}."
    )


@dataclass(frozen=True)
class TestOutcome:
    """What one test run came to: `status` is "passed" or one of `TEST_FAILURES`.

    `observed` is the program's normalised behaviour (stdout lines or the typed return value as
    JSON text, or the failure status) for behaviour fingerprints; `message` explains failures.
    """

    __test__ = False  # not a pytest test class

    status: str
    observed: str
    isolation: str
    message: str = ""


class LiveCodeBenchTask(CodeTask):
    """LiveCodeBench code generation, graded by running programs in `prmbench.sandbox`.

    Args:
        data_file: A local JSONL/JSONL.gz file in the upstream schema. Taken whole (the release
            tag is not applied to it); the date window still is.
        release_version: Upstream release tag (``release_v1`` .. ``release_v6``,
            ``release_latest``, ``vN`` or ``vA_vB``; see `prmbench.tasks.lcb_data`). Picks the
            hub files, or the local ``$PRMBENCH_DATA_DIR/livecodebench/<release_version>.jsonl``
            (``.jsonl.gz``), or the upstream files ``test.jsonl`` .. ``test6.jsonl`` in that folder.
        start_date, end_date: Keep problems whose ``contest_date`` falls in this inclusive window
            (``YYYY-MM-DD``; either may be None for an open end), as upstream's
            ``--start_date/--end_date`` do for contamination-free evaluation.
        comparator: ``strict`` (LiveCodeBench's rule, default, comparable with published numbers)
            or ``float`` (numbers within `rtol`/`atol`).
        timeout: CPU seconds per test (upstream's default is 6; wall time is allowed
            ``2 * timeout + 1``).
        memory_mb: Address-space limit per test program.
        step_split: ``blank_lines`` (default) or ``none``, as for every `CodeTask`.
        isolation, allow_unsafe, workers: Passed to `prmbench.sandbox.Sandbox` (created on first
            use, closed by `close`); `workers` tests run in parallel.

    Source order for `load`: `data_file`; the local files under ``$PRMBENCH_DATA_DIR``; the hub
    (``huggingface_hub`` downloads of the release files; not tried when ``HF_HUB_OFFLINE`` or
    ``HF_DATASETS_OFFLINE`` is set). Each problem is ``Problem(id=question_id, question=
    question_content, reference="sha256:<hash of all its tests>", metadata={title, platform,
    contest_id, contest_date, difficulty, starter_code, func_name, testtype, public_tests})``.
    The hidden tests stay in the task (encoded until grading needs them), never in the Problem,
    so strategies and reward models cannot see them.

    `version` rule: bump it whenever prompts, row parsing, program extraction, the sandbox
    programs or the comparators change.
    """

    version = "1"

    def __init__(
        self,
        data_file: str | None = None,
        release_version: str = "release_v5",
        start_date: str | None = None,
        end_date: str | None = None,
        comparator: str = "strict",
        timeout: float = 6.0,
        memory_mb: int = 2048,
        rtol: float = 1e-6,
        atol: float = 1e-6,
        isolation: str = "auto",
        allow_unsafe: bool = False,
        workers: int | None = None,
        step_split: str = "blank_lines",
    ) -> None:
        super().__init__(step_split=step_split, isolation=isolation, allow_unsafe=allow_unsafe, workers=workers)
        self.data_file = None if data_file in (None, "") else str(data_file)
        release_files(release_version)  # validates the tag
        self.release_version = release_version
        self.start_date = None if start_date in (None, "") else parse_date(start_date, "start_date")
        self.end_date = None if end_date in (None, "") else parse_date(end_date, "end_date")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ConfigError(f"{TASK_NAME}: start_date {self.start_date} is after end_date {self.end_date}")
        if comparator not in COMPARATORS:
            raise ConfigError(f"{TASK_NAME}: unknown comparator {comparator!r}; use one of {', '.join(COMPARATORS)}")
        self.comparator = comparator
        self.timeout = self._positive("timeout", timeout)
        self.memory_mb = int(self._positive("memory_mb", memory_mb))
        self.rtol = self._positive("rtol", rtol, allow_zero=True)
        self.atol = self._positive("atol", atol, allow_zero=True)
        self._hidden: dict[str, tuple[Any, str]] = {}
        self._cache_lock = threading.Lock()
        self._hidden_cache: OrderedDict[str, tuple[TestCase, ...]] = OrderedDict()
        self._public_cache: OrderedDict[tuple[str, str], tuple[TestOutcome, ...]] = OrderedDict()

    @staticmethod
    def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        ok = v >= 0 if allow_zero else v > 0
        if isinstance(value, bool) or not ok or v == float("inf"):
            raise ConfigError(f"{TASK_NAME}: {name} must be a positive number, got {value!r}")
        return v

    # -- identity ----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Arguments that affect results (the file path is left out: the data fingerprint covers it)."""
        return {
            **super().config(),
            "release_version": None if self.data_file else self.release_version,
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "comparator": self.comparator,
            "timeout": self.timeout,
            "memory_mb": self.memory_mb,
            **({"rtol": self.rtol, "atol": self.atol} if self.comparator == "float" else {}),
        }

    # -- data --------------------------------------------------------------------------------
    def load(self) -> list[Problem]:
        """The problems of the release (or file) inside the date window, in file order."""
        return self._build(self._rows())

    def _rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self.data_file is not None:
            path = Path(self.data_file).expanduser()
            if not path.is_file():
                raise DataError(f"{TASK_NAME} data file {path} does not exist (or is not a file). "
                                f"{_fix_hint(self.release_version)}")
            return iter_jsonl(path)
        data_dir = os.environ.get("PRMBENCH_DATA_DIR")
        if data_dir:
            folder = Path(data_dir).expanduser() / TASK_NAME
            for name in (f"{self.release_version}.jsonl", f"{self.release_version}.jsonl.gz"):
                if (folder / name).is_file():
                    return iter_jsonl(folder / name)
            files = [folder / f for f in release_files(self.release_version)]
            if all(f.is_file() for f in files):
                return self._chain(files)
        return self._hub_rows(data_dir)

    @staticmethod
    def _chain(paths: Iterable[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
        for p in paths:
            yield from iter_jsonl(p)

    def _hub_rows(self, data_dir: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        why_local = (f"PRMBENCH_DATA_DIR={data_dir} has no {TASK_NAME}/{self.release_version}.jsonl. " if data_dir
                     else "PRMBENCH_DATA_DIR is not set. ")
        offline = [v for v in _OFFLINE_VARS if env_flag(v)]
        if offline:
            raise DataError(
                f"{TASK_NAME}: no local data and the Hugging Face hub is off ({offline[0]}={os.environ[offline[0]]}), "
                f"so {HUB_REPO!r} ({self.release_version}) cannot be downloaded. {why_local}"
                f"{_fix_hint(self.release_version)}"
            )
        paths = []
        for name in release_files(self.release_version):
            try:
                from huggingface_hub import hf_hub_download

                paths.append(Path(hf_hub_download(HUB_REPO, name, repo_type="dataset")))
            except Exception as e:  # network, auth, missing file, ...
                raise DataError(
                    f"{TASK_NAME}: cannot download {name} of {HUB_REPO!r} from the Hugging Face hub: "
                    f"{type(e).__name__}: {str(e)[:300]}. {why_local}{_fix_hint(self.release_version)}"
                ) from e
        return self._chain(paths)

    def _build(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> list[Problem]:
        problems: list[Problem] = []
        seen: dict[str, str] = {}
        hidden: dict[str, tuple[Any, str]] = {}
        total = 0
        for where, row in rows:
            total += 1
            raw = parse_row(where, row)
            if raw.question_id in seen:
                raise DataError(f"{where}: duplicate question_id {raw.question_id!r} (first at {seen[raw.question_id]})")
            seen[raw.question_id] = where
            if not in_window(raw.contest_date, self.start_date, self.end_date):
                continue
            problems.append(self._problem(raw))
            hidden[raw.question_id] = (raw.private_raw, f"{where} private_test_cases")
        if total == 0:
            raise DataError(f"{TASK_NAME}: no problems found (empty data). {_fix_hint(self.release_version)}")
        if not problems:
            raise DataError(f"{TASK_NAME}: none of the {total} problems has a contest_date in "
                            f"[{self.start_date or '-inf'}, {self.end_date or '+inf'}]; widen start_date/end_date")
        self._hidden = hidden
        self._hidden_cache.clear()
        return problems

    @staticmethod
    def _problem(raw: RawProblem) -> Problem:
        kind = raw.public_tests[0].testtype if raw.public_tests else ("functional" if raw.func_name else "stdin")
        h = hashlib.sha256()
        h.update(json.dumps([t.to_json() for t in raw.public_tests], sort_keys=True).encode())
        h.update(json.dumps(raw.private_raw, sort_keys=True).encode())
        return Problem(
            id=raw.question_id,
            task=TASK_NAME,
            question=raw.content,
            reference=f"sha256:{h.hexdigest()}",
            metadata={
                "title": raw.title,
                "platform": raw.platform,
                "contest_id": raw.contest_id,
                "contest_date": raw.contest_date.isoformat(),
                "difficulty": raw.difficulty,
                "starter_code": raw.starter_code,
                "func_name": raw.func_name,
                "testtype": kind,
                "public_tests": [t.to_json() for t in raw.public_tests],
            },
        )

    def public_tests(self, problem: Problem) -> list[TestCase]:
        """The problem's public examples (shown in the statement; safe for selection)."""
        return [TestCase(t["input"], t["output"], t.get("testtype", "stdin"))
                for t in problem.metadata.get("public_tests", [])]

    def hidden_tests(self, problem: Problem) -> list[TestCase]:
        """The problem's hidden tests, decoded (safely) on first use; for grading only."""
        if problem.id not in self._hidden:
            self.load()
        if problem.id not in self._hidden:
            raise DataError(f"{TASK_NAME}: problem {problem.id!r} is not in the loaded data "
                            f"({self.release_version}, window {self.start_date}..{self.end_date})")
        with self._cache_lock:
            cached = self._hidden_cache.get(problem.id)
        if cached is None:
            raw, where = self._hidden[problem.id]
            cached = tuple(decode_test_cases(raw, where))
            kind = problem.metadata.get("testtype")
            bad = [i for i, t in enumerate(cached) if t.testtype != kind]
            if bad:
                raise DataError(f"{where}: hidden test {bad[0]} is {cached[bad[0]].testtype!r} but the problem is {kind!r}")
            with self._cache_lock:
                self._hidden_cache[problem.id] = cached
                while len(self._hidden_cache) > 8:
                    self._hidden_cache.popitem(last=False)
        return list(cached)

    # -- prompting ---------------------------------------------------------------------------
    def user_prompt(self, problem: Problem) -> str:
        """The problem statement and its format: a stdin program, or the LeetCode starter code."""
        starter = (problem.metadata.get("starter_code") or "").rstrip()
        fmt = FUNCTIONAL_FORMAT.format(starter=starter) if starter else STDIN_FORMAT
        return f"### Question\n{problem.question.strip()}\n\n### Format\n{fmt}"

    # -- execution ---------------------------------------------------------------------------
    def _limits(self, tests: Sequence[TestCase]) -> Any:
        """Per-run limits: `timeout` seconds of CPU time (the binding limit; wall time gets
        ``2 * timeout + 1`` so that a loaded machine does not turn slow starts into timeouts, while
        a sleeping program is still stopped), `memory_mb`, and an output cap that leaves room for
        the longest expected output of `tests` (real problems print megabytes), at least 1 MB."""
        from prmbench.sandbox import Limits

        longest = max((len(t.output.encode()) for t in tests), default=0)
        return Limits(wall_seconds=2 * self.timeout + 1, cpu_seconds=self.timeout, memory_mb=self.memory_mb,
                      max_output_bytes=max(1_000_000, 4 * longest + 65_536))

    def _program(self, problem: Problem, code: str) -> str:
        if problem.metadata.get("testtype") == "functional":
            return functional_program(code, str(problem.metadata.get("func_name")))
        return stdio_program(code)

    def _judge(self, problem: Problem, test: TestCase, result: Any) -> TestOutcome:
        """Turn one ExecResult into a TestOutcome (compares on this, the trusted, side)."""
        iso = result.isolation
        if result.status != "ok":
            msg = result.message or (result.stderr or "").strip()[-500:]
            return TestOutcome(result.status, result.status, iso, msg)
        stdio_eq, value_eq = COMPARATORS[self.comparator]
        if self.comparator == "float":
            stdio_eq_t = lambda a, b: stdio_eq(a, b, self.rtol, self.atol)  # noqa: E731
            value_eq_t = lambda a, b: value_eq(a, b, self.rtol, self.atol)  # noqa: E731
        else:
            stdio_eq_t, value_eq_t = stdio_eq, value_eq
        if test.testtype == "functional":
            kind, value = parse_functional_stdout(result.stdout)
            if kind != "ok":
                return TestOutcome("runtime_error", kind, iso, f"{kind}: {value}")
            observed = json.dumps(value, sort_keys=True, default=repr)
            try:
                expected = json.loads(test.output)
            except ValueError:
                raise DataError(f"{TASK_NAME} problem {problem.id!r}: a test's expected output is not JSON: "
                                f"{test.output[:100]!r}") from None
            ok = value_eq_t(value, expected)
            return TestOutcome("passed" if ok else "wrong_answer", observed, iso,
                               "" if ok else f"returned {observed[:200]}")
        observed = "\n".join(stripped_lines(result.stdout))
        ok = stdio_eq_t(result.stdout, test.output)
        return TestOutcome("passed" if ok else "wrong_answer", observed, iso,
                           "" if ok else f"printed {observed[:200]!r}")

    def _execute(self, problem: Problem, jobs: Sequence[tuple[str, TestCase]]) -> list[TestOutcome]:
        """Run (code, test) pairs in parallel on the sandbox slots; outcomes in order."""
        if not jobs:
            return []
        programs = {code: self._program(problem, code) for code, _ in jobs}
        results = self.sandbox.run_many([programs[c] for c, _ in jobs], [t.input for _, t in jobs],
                                        self._limits([t for _, t in jobs]))
        return [self._judge(problem, t, r) for (_, t), r in zip(jobs, results)]

    def run_tests(self, problem: Problem, code: str, tests: Sequence[TestCase],
                  fail_fast: bool = True) -> list[TestOutcome]:
        """Run `code` on `tests` in the sandbox, `workers` at a time, in order.

        With `fail_fast`, stops after the batch holding the first failure (later tests are
        not run, as upstream stops at the first failing test).
        """
        batch = max(1, int(getattr(self.sandbox, "workers", 1) or 1))
        out: list[TestOutcome] = []
        for start in range(0, len(tests), batch):
            out.extend(self._execute(problem, [(code, t) for t in tests[start:start + batch]]))
            if fail_fast and any(o.status != "passed" for o in out):
                break
        return out

    def _public_outcomes_many(self, problem: Problem, codes: Sequence[str]) -> list[tuple[TestOutcome, ...]]:
        """Each program's outcomes on all public examples (cached; new programs run together)."""
        tests = self.public_tests(problem)
        keys = [(problem.id, hashlib.sha256(c.encode()).hexdigest()) for c in codes]
        with self._cache_lock:
            todo = list(dict.fromkeys(c for c, k in zip(codes, keys) if k not in self._public_cache))
        outcomes = self._execute(problem, [(c, t) for c in todo for t in tests])
        with self._cache_lock:
            for n, c in enumerate(todo):
                key = (problem.id, hashlib.sha256(c.encode()).hexdigest())
                self._public_cache[key] = tuple(outcomes[n * len(tests):(n + 1) * len(tests)])
            found = [self._public_cache.get(k) for k in keys]
            while len(self._public_cache) > 512:
                self._public_cache.popitem(last=False)
        return [f if f is not None else () for f in found]

    def public_outcomes(self, problem: Problem, codes: Sequence[str]) -> list[list[tuple[bool, Any]]]:
        """``(passed, observation)`` per public example for each program (never hidden tests).

        The observation is the program's normalised stdout lines, its typed return value as
        JSON text, or its failure status; `vote_keys` and `public_pass_fraction` (from
        `CodeTask`) are built on it.
        """
        runs = self._public_outcomes_many(problem, list(codes))
        return [[(o.status == "passed", o.observed) for o in run] for run in runs]

    # -- grading -----------------------------------------------------------------------------
    @staticmethod
    def _summary(outcomes: Sequence[TestOutcome], total: int) -> dict[str, Any]:
        first = next((i for i, o in enumerate(outcomes) if o.status != "passed"), None)
        return {
            "status": "passed" if first is None and len(outcomes) == total else
                      (outcomes[first].status if first is not None else "not_run"),
            "passed": sum(o.status == "passed" for o in outcomes),
            "total": total,
            "first_failure": first,
            "message": outcomes[first].message[:500] if first is not None else "",
        }

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the completion's program passes all public and all hidden tests.

        `details`: ``reason`` ("passed", "no_code" or the first failure's status),
        ``public``/``private`` (each: ``status``, ``passed``, ``total``, ``first_failure``
        index, ``message``; private ``status`` is "not_run" when a public test failed),
        ``first_failing`` (``{"kind", "index"}`` or None), ``isolation`` (the sandbox level the
        tests ran under) and ``comparator``.
        """
        code = self.extract_program(problem, completion or "")
        public = self.public_tests(problem)
        if code is None:
            return Grade(False, {"reason": "no_code", "public": None, "private": None, "first_failing": None,
                                 "isolation": None, "comparator": self.comparator})
        hidden = self.hidden_tests(problem)
        if not public and not hidden:
            raise DataError(f"{TASK_NAME} problem {problem.id!r} has no tests at all; it cannot be graded")
        pub = self.run_tests(problem, code, public)
        pub_sum = self._summary(pub, len(public))
        priv: list[TestOutcome] = []
        if pub_sum["first_failure"] is None:
            priv = self.run_tests(problem, code, hidden)
        priv_sum = self._summary(priv, len(hidden))
        if pub_sum["first_failure"] is not None:
            first = {"kind": "public", "index": pub_sum["first_failure"]}
            reason = pub_sum["status"]
        elif priv_sum["first_failure"] is not None:
            first = {"kind": "private", "index": priv_sum["first_failure"]}
            reason = priv_sum["status"]
        else:
            first, reason = None, "passed"
        isolation = next((o.isolation for o in (*pub, *priv)), getattr(self._sandbox, "isolation", None))
        return Grade(reason == "passed", {"reason": reason, "public": pub_sum, "private": priv_sum,
                                          "first_failing": first, "isolation": isolation,
                                          "comparator": self.comparator})
