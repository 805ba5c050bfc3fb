"""LiveCodeBench data handling: release files, row parsing, test-case decoding, date windows.

The upstream data set is ``livecodebench/code_generation_lite`` on the Hugging Face hub. It is a
folder of JSONL files, one per release delta:

========== ============= ==================================================
file        delta         cumulative release tag
========== ============= ==================================================
test.jsonl  v1 (400)      release_v1 (May 2023 - Mar 2024)
test2.jsonl v2 (+111)     release_v2 (to May 2024)
test3.jsonl v3 (+101)     release_v3 (to Jul 2024)
test4.jsonl v4 (+101)     release_v4 (to Sep 2024)
test5.jsonl v5 (+167)     release_v5 (to Jan 2025)
test6.jsonl v6 (+175)     release_v6 (to Apr 2025)
========== ============= ==================================================

Release tags follow upstream's loader: ``release_vN`` (or ``release_latest`` = the newest) is
files 1..N, ``vN`` is the single delta file N, and ``vA_vB`` is deltas A..B.

Each row has the string fields ``question_title``, ``question_content``, ``platform``,
``question_id``, ``contest_id``, ``contest_date`` (ISO), ``starter_code``, ``difficulty``,
``public_test_cases`` (a JSON string of ``[{"input", "output", "testtype"}]``),
``private_test_cases`` (the same list, either as a JSON string or encoded as
base64(zlib(pickle(JSON string)))) and ``metadata`` (a JSON string; ``func_name`` for LeetCode
problems). The pickle layer is decoded with an unpickler that refuses every global, so a
crafted file cannot run code (see `decode_test_cases`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import gzip
import io
import json
import pickle
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

from prmbench.errors import ConfigError, DataError

TASK_NAME = "livecodebench"
HUB_REPO = "livecodebench/code_generation_lite"
#: Upstream file of each release delta, in release order.
RELEASE_FILES: tuple[str, ...] = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl",
                                  "test6.jsonl")
REQUIRED_FIELDS = ("question_id", "question_content", "platform", "contest_date", "public_test_cases",
                   "private_test_cases")
TestType = Literal["stdin", "functional"]
#: Largest decompressed size accepted for one problem's hidden tests (a guard against zlib bombs;
#: the biggest real LiveCodeBench problems need a few hundred MB).
MAX_DECODED_BYTES = 2 * 1024 ** 3


@dataclass(frozen=True)
class TestCase:
    """One input/output example of a problem.

    `testtype` is ``"stdin"`` (the program reads `input` on stdin and must print `output`) or
    ``"functional"`` (`input` holds one JSON value per line, the arguments of the LeetCode
    method; `output` is the JSON of its return value).
    """

    __test__ = False  # not a pytest test class

    input: str
    output: str
    testtype: TestType

    def to_json(self) -> dict[str, str]:
        """JSON-compatible form, in the upstream field names."""
        return {"input": self.input, "output": self.output, "testtype": self.testtype}


# -- release tags -----------------------------------------------------------------------------
def release_files(version: str) -> list[str]:
    """Upstream file names that make up release tag `version` (see the module docstring).

    Raises ConfigError for an unknown tag.
    """
    n = len(RELEASE_FILES)
    tag = (version or "").strip()
    m = re.fullmatch(r"release_v(\d+)", tag)
    if tag == "release_latest":
        return list(RELEASE_FILES)
    if m and 1 <= int(m.group(1)) <= n:
        return list(RELEASE_FILES[: int(m.group(1))])
    m = re.fullmatch(r"v(\d+)", tag)
    if m and 1 <= int(m.group(1)) <= n:
        return [RELEASE_FILES[int(m.group(1)) - 1]]
    m = re.fullmatch(r"v(\d+)_v(\d+)", tag)
    if m and 1 <= int(m.group(1)) <= int(m.group(2)) <= n:
        return list(RELEASE_FILES[int(m.group(1)) - 1: int(m.group(2))])
    raise ConfigError(
        f"{TASK_NAME}: unknown release_version {version!r}; use release_v1 .. release_v{n} (cumulative), "
        f"release_latest, v1 .. v{n} (one release's new problems) or vA_vB (a range of them)"
    )


# -- dates ------------------------------------------------------------------------------------
def parse_date(value: Any, what: str) -> _dt.date:
    """A calendar date from ``YYYY-MM-DD`` or an ISO datetime string (time and zone ignored).

    Raises ConfigError naming `what` when the value is not such a string.
    """
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        m = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", value)
        if m:
            try:
                return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                pass
    raise ConfigError(f"{TASK_NAME}: {what} must be a date written YYYY-MM-DD, got {value!r}")


def in_window(contest_date: _dt.date, start: _dt.date | None, end: _dt.date | None) -> bool:
    """Whether `contest_date` lies in the inclusive window [start, end] (open ends allowed)."""
    return (start is None or contest_date >= start) and (end is None or contest_date <= end)


# -- test-case decoding -----------------------------------------------------------------------
class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global (class or function) reference.

    LiveCodeBench pickles a plain ``str``, which needs no globals. Anything that names a global
    (``os.system`` through ``__reduce__``, but equally a harmless ``collections.OrderedDict``) is
    refused, so loading can never import or call anything.
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - see the class docstring
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise pickle.UnpicklingError("refused persistent id")


def _safe_unpickle(blob: bytes) -> Any:
    return _NoGlobalsUnpickler(io.BytesIO(blob)).load()


def encode_private_tests(tests: Sequence[TestCase | Mapping[str, str]]) -> str:
    """Upstream's compressed encoding: base64(zlib(pickle(JSON string))).

    For writing test fixtures and re-encoding data; `decode_test_cases` reverses it.
    """
    rows = [t.to_json() if isinstance(t, TestCase) else dict(t) for t in tests]
    blob = pickle.dumps(json.dumps(rows), protocol=4)
    return base64.b64encode(zlib.compress(blob)).decode("ascii")


def _inflate(raw: bytes, where: str) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(raw, MAX_DECODED_BYTES)
    if d.unconsumed_tail:
        raise DataError(f"{where}: hidden tests decompress to more than {MAX_DECODED_BYTES} bytes; refusing")
    return out + d.flush()


def decode_test_cases(value: Any, where: str) -> list[TestCase]:
    """The test cases of one ``public_test_cases``/``private_test_cases`` field.

    Accepts a JSON string of the list, the list itself (re-encoded copies), or upstream's
    compressed encoding base64 -> zlib -> pickle -> JSON string. The pickle step uses an
    unpickler that refuses every global, so a malicious pickle is refused with a DataError
    instead of running code. Every other malformation is a DataError naming `where`.
    """
    if isinstance(value, list):
        return _test_list(value, where)
    if not isinstance(value, str):
        raise DataError(f"{where}: expected a JSON string or a list of test cases, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            return _test_list(json.loads(text), where)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: test cases are not valid JSON ({e.msg} at column {e.colno})") from None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DataError(f"{where}: test cases are neither JSON nor base64(zlib(pickle(JSON))) text") from None
    try:
        blob = _inflate(raw, where)
    except zlib.error as e:
        raise DataError(f"{where}: test cases are base64 but not zlib-compressed ({e})") from None
    try:
        obj = _safe_unpickle(blob)
    except pickle.UnpicklingError as e:
        raise DataError(
            f"{where}: refused to unpickle the hidden tests ({e}); LiveCodeBench data pickles only a plain "
            f"string, so this file is corrupt or crafted. Re-download it or supply the tests as plain JSON."
        ) from None
    except Exception as e:  # truncated or garbage pickle streams raise assorted errors
        raise DataError(f"{where}: hidden tests are not a valid pickle ({type(e).__name__}: {e})") from None
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", errors="replace")
    if isinstance(obj, list):
        return _test_list(obj, where)
    if not isinstance(obj, str):
        raise DataError(f"{where}: the unpickled hidden tests are a {type(obj).__name__}, expected a JSON string")
    try:
        return _test_list(json.loads(obj), where)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: the unpickled hidden tests are not valid JSON ({e.msg})") from None


def _test_list(obj: Any, where: str) -> list[TestCase]:
    if not isinstance(obj, list):
        raise DataError(f"{where}: test cases must be a list of {{input, output, testtype}}, got {type(obj).__name__}")
    out = []
    for i, t in enumerate(obj):
        if not isinstance(t, Mapping) or not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            raise DataError(f"{where}: test {i} must be an object with string fields input and output")
        kind = t.get("testtype", "stdin")
        if kind not in ("stdin", "functional"):
            raise DataError(f"{where}: test {i} has testtype {kind!r}; expected 'stdin' or 'functional'")
        out.append(TestCase(t["input"], t["output"], kind))
    return out


# -- files ------------------------------------------------------------------------------------
def iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``path:line``, row) for each non-blank line of a JSONL file, plain or gzip (by content).

    Streams the file (release files are hundreds of MB). Raises DataError naming the line for
    invalid JSON, non-objects and non-UTF-8 text.
    """
    try:
        with path.open("rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        raw = gzip.open(path, "rb") if gz else path.open("rb")
    except OSError as e:
        raise DataError(f"cannot read {TASK_NAME} data file {path}: {e}") from e
    with raw:
        try:
            for no, line in enumerate(raw, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.decode("utf-8-sig" if no == 1 else "utf-8"))
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}:{no}: not UTF-8 text ({e}); expected a JSONL file") from None
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{no}: invalid JSON ({e.msg} at column {e.colno}); each line must "
                                    f"be one LiveCodeBench JSON object") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{no}: expected a JSON object per line, got {type(row).__name__}")
                yield f"{path}:{no}", row
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a valid gzip file ({e}); re-create it") from None


@dataclass(frozen=True)
class RawProblem:
    """One parsed row; the hidden tests stay encoded until grading needs them."""

    question_id: str
    title: str
    content: str
    platform: str
    contest_id: str
    contest_date: _dt.date
    contest_date_raw: str
    starter_code: str
    difficulty: str
    public_tests: tuple[TestCase, ...]
    private_raw: Any
    func_name: str | None
    where: str


def parse_row(where: str, row: Mapping[str, Any]) -> RawProblem:
    """Validate one upstream row and parse everything except the (large) hidden tests."""
    missing = [k for k in REQUIRED_FIELDS if k not in row or row[k] is None]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)} (a LiveCodeBench code_generation_lite "
                        f"row needs {', '.join(REQUIRED_FIELDS)})")
    qid = row["question_id"]
    if not isinstance(qid, (str, int)) or not str(qid).strip():
        raise DataError(f"{where}: question_id must be a non-empty string, got {qid!r}")
    try:
        date = parse_date(row["contest_date"], "contest_date")
    except ConfigError:
        raise DataError(f"{where}: contest_date must be an ISO date, got {row['contest_date']!r}") from None
    meta = row.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: metadata is not valid JSON ({e.msg})") from None
    if not isinstance(meta, Mapping):
        raise DataError(f"{where}: metadata must be a JSON object, got {type(meta).__name__}")
    public = decode_test_cases(row["public_test_cases"], f"{where} public_test_cases")
    kinds = {t.testtype for t in public}
    func_name = meta.get("func_name")
    if len(kinds) > 1:
        raise DataError(f"{where}: public tests mix stdin and functional test types")
    if "functional" in kinds and not (isinstance(func_name, str) and func_name.isidentifier()):
        raise DataError(f"{where}: functional problem without a valid metadata.func_name (got {func_name!r})")
    if not isinstance(func_name, str) or not func_name:
        func_name = None
    return RawProblem(
        question_id=str(qid).strip(),
        title=str(row.get("question_title") or ""),
        content=str(row["question_content"]),
        platform=str(row["platform"]),
        contest_id=str(row.get("contest_id") or ""),
        contest_date=date,
        contest_date_raw=str(row["contest_date"]),
        starter_code=str(row.get("starter_code") or ""),
        difficulty=str(row.get("difficulty") or ""),
        public_tests=tuple(public),
        private_raw=row["private_test_cases"],
        func_name=func_name,
        where=where,
    )
