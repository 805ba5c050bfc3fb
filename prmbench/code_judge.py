"""Trusted-supervisor judging of function-call code tasks (HumanEval+, MBPP+) in the sandbox.

Design
    The sandboxed side only *runs*: `DRIVER_SOURCE` is a small Python program that reads a
    JSON job from stdin (the candidate's source, the entry point, the inputs as typed JSON and
    a time limit per input), executes the candidate, calls it on each input under that limit,
    and writes one JSON line per input with the return value as typed JSON (or the exception
    it raised). Expected outputs never enter the sandbox, and nothing is unpickled: the
    supervisor decodes plain JSON into builtin values and compares them itself
    (`EvalplusComparator`). An "always equal" object or a program that peeks at its caller's
    frames therefore cannot pass: non-builtin return values are reported as a failure
    (``unsupported``) and there is nothing to peek at.

Typed JSON (`encode_value` / `decode_value`)
    ``None``, ``bool``, ``str`` and finite ``float`` map to themselves; ``int`` maps to a JSON
    number when it fits in 64 bits and to ``{"$int": hex}`` otherwise (no digit limit); lists
    to arrays; everything else to a one-key object: ``{"$float": "nan"|"inf"|"-inf"}``,
    ``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$frozenset": [...]}``,
    ``{"$dict": [[k, v], ...]}`` (any hashable keys, insertion order kept; ``Counter``,
    ``OrderedDict`` and ``defaultdict`` are encoded as plain dicts, since MBPP+ canonical
    solutions return them),
    ``{"$bytes": hex}``, ``{"$bytearray": hex}``, ``{"$complex": [re, im]}`` (parts as
    floats). Only exact builtin types are accepted (``type(x) is int``, not a subclass), so
    ``True`` and ``1`` and ``1.0`` stay distinct, and objects with a custom ``__eq__`` are
    rejected. Self-referencing containers and nesting deeper than `MAX_DEPTH` are rejected.

Evalplus semantics (release 0.3.1, ``evalplus/eval/__init__.py``; the installed reference)
    Per input, in order: ``exact = out == exp``; the special oracles (MBPP+: ``are_equivalent``
    always passes, ``sum_div`` also accepts 0, ``surface_Area`` and ``digit_distance_nums``
    use reference formulas, set equality for `MBPP_SET_EQ_ENTRY_POINTS`, "is not None" for
    `MBPP_NOT_NONE_ENTRY_POINTS`; HumanEval+ ``find_zero``: ``|poly(xs, out)| <= atol``); then
    if ``atol == 0`` and the expected value is a float or a non-empty list/tuple of floats,
    ``atol`` becomes 1e-6 for this and every later input of the same run (evalplus assigns
    the variable, so the promotion sticks); if not exact and ``atol != 0``: same type, same
    length for lists/tuples and ``numpy.allclose(out, exp, rtol=1e-07, atol=atol)``; else the
    exact match decides. Base inputs and plus inputs are separate runs (each starts from the
    problem's ``atol``); the first failing input ends a run (evalplus ``fast_check``, the
    default of its CLI). Time limit per input ``max(min_time_limit, factor * gt_time)`` with
    evalplus's defaults ``DEFAULT_MIN_TIME_LIMIT = 1.0`` and
    ``DEFAULT_GT_TIME_LIMIT_FACTOR = 4.0``, and a whole-run limit of
    ``min(60, sum(limits)) + 1`` seconds (evalplus's ``EVALPLUS_TIMEOUT_PER_TASK``). The
    memory limit is evalplus's 4 GiB address space. Inside the sandbox the driver applies the
    same "reliability guard" evalplus applies (``open``, ``exit``, ``os.system``... replaced by
    None) and swallows the candidate's stdin/stdout/stderr like evalplus's ``swallow_io``.

Other evalplus releases
    The judging code and constants of the later evalplus master (commit 5d2cb6d, read in a
    source index) are identical to 0.3.1. The previous release, 0.2.1 (read from its wheel),
    differs: per-input limits ``max(0.1, 2.0 * gt_time)`` (min 0.1 s, factor 2.0); data
    HumanEval+ v0.1.9 and MBPP+ v0.1.0; the ``find_zero`` oracle without ``abs`` and without
    ``continue`` (the output then also had to match the recorded root within tolerance);
    tolerance via ``np.testing.assert_allclose(out, exp, atol=atol)`` without the type and
    length checks; and only the ``are_equivalent``, ``sum_div`` and not-None MBPP oracles.

Deliberate differences from evalplus 0.3.1 (all listed in tests/test_evalplus_parity.py)
    * The ``find_zero`` oracle: evalplus 0.3.1's ``continue`` skips its progress counter, so
      every HumanEval/32 sample fails there; here the oracle is applied as intended.
      The oracle also uses the original inputs, not ones the candidate may have mutated.
    * Non-builtin return values (numpy scalars, custom classes) fail here; evalplus compares
      them with ``==`` in the candidate's process (which is what lets always-equal objects
      pass there). ``Counter``/``OrderedDict``/``defaultdict`` are accepted as plain dicts.
    * Outputs whose ``marshal`` form exceeds `BIG_OUTPUT_BYTES` (32 MiB; in the data sets only
      one input of Mbpp/255, 1.66 M tuples) are compared by the sha256 of that form: exact
      serialised identity, stricter than ``==`` (``1`` vs ``1.0``, set/dict order) and
      without float tolerance. (Strings over 64 KiB are compared by digest as well, which is
      exactly ``==``; see `BIG_STR_OUTPUT_BYTES`.)
    * Plus inputs are not run after the base inputs failed (evalplus runs them; the verdict
      "base and plus pass" is the same; the tasks' ``plus_after_base_fail=True`` runs them).
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

#: The evalplus release whose judging semantics this module follows.
EVALPLUS_RELEASE = "0.3.1"
#: evalplus ``DEFAULT_MIN_TIME_LIMIT`` (seconds).
DEFAULT_MIN_TIME_LIMIT = 1.0
#: evalplus ``DEFAULT_GT_TIME_LIMIT_FACTOR``.
DEFAULT_GT_TIME_LIMIT_FACTOR = 4.0
#: evalplus ``EVALPLUS_TIMEOUT_PER_TASK`` default (seconds, cap on the sum of the limits).
DEFAULT_TIMEOUT_PER_RUN = 60.0
#: evalplus ``EVALPLUS_MAX_MEMORY_BYTES`` default (4 GiB), in MiB.
DEFAULT_MEMORY_MB = 4096
#: Deepest nesting `encode_value` accepts.
MAX_DEPTH = 100

#: MBPP+ entry points whose outputs are compared as sets (evalplus ``MBPP_OUTPUT_SET_EQ_TASKS``).
MBPP_SET_EQ_ENTRY_POINTS = frozenset({
    "similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
    "larg_nnum", "intersection_array", "find_dissimilar", "Diff",
})
#: MBPP+ entry points judged on "returns something not None" (evalplus ``MBPP_OUTPUT_NOT_NONE_TASKS``).
MBPP_NOT_NONE_ENTRY_POINTS = frozenset({"check_str", "text_match_three", "text_starta_endb"})

#: Outputs whose ``marshal.dumps(value, 0)`` is larger than this are compared by its sha256
#: (exact serialised identity) instead of being sent back whole (only Mbpp/255 needs it).
BIG_OUTPUT_BYTES = 1 << 25

#: Strings and bytes whose marshal form is larger than this are compared by digest too, where
#: string comparison is plain ``==`` anyway (everywhere but the MBPP+ set-equality and
#: not-None tasks): ``==`` on ``str`` is exact, so this changes no verdict and keeps huge
#: string outputs (HumanEval/15) out of the pipe and the ground-truth cache.
BIG_STR_OUTPUT_BYTES = 1 << 16


def str_digest_threshold(dataset: str, entry_point: str) -> int | None:
    """`BIG_STR_OUTPUT_BYTES` where big strings may be compared by digest, else None."""
    if dataset == "mbpp" and (entry_point in MBPP_SET_EQ_ENTRY_POINTS or entry_point in MBPP_NOT_NONE_ENTRY_POINTS):
        return None
    return BIG_STR_OUTPUT_BYTES


#: Judge version: bump when encoding, driver, comparison or ground-truth logic changes.
JUDGE_VERSION = "2"


@dataclass(frozen=True)
class Digest:
    """Stands for a huge output: sha256 and size of its ``marshal.dumps(value, 0)`` bytes."""

    sha256: str
    size: int


class UnsupportedValue(TypeError):
    """A value that typed JSON cannot represent (non-builtin type, cycle, too deep)."""


# --------------------------------------------------------------------------------------------
# Typed JSON. These functions are also copied verbatim into the sandbox driver (see
# `DRIVER_SOURCE`), so they must only use builtins and names defined in this block.
# --------------------------------------------------------------------------------------------
def encode_value(value: Any, _depth: int = 0, _active: set | None = None) -> Any:
    """Encode a builtin value as typed JSON (see the module docstring); raise UnsupportedValue."""
    if _depth > 100:
        raise UnsupportedValue("nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        if -(2 ** 63) <= value < 2 ** 63:
            return value
        return {"$int": hex(value)}
    if t is float:
        if value != value:
            return {"$float": "nan"}
        if value in (float("inf"), float("-inf")):
            return {"$float": "inf" if value > 0 else "-inf"}
        return value
    if t is complex:
        return {"$complex": [encode_value(value.real, _depth + 1), encode_value(value.imag, _depth + 1)]}
    if t is bytes:
        return {"$bytes": value.hex()}
    if t is bytearray:
        return {"$bytearray": bytes(value).hex()}
    if t not in (list, tuple, set, frozenset, dict):
        import collections as _collections

        if t in (_collections.Counter, _collections.OrderedDict, _collections.defaultdict):
            t = dict  # stdlib dict subclasses with dict data: encoded as plain dicts
    if t in (list, tuple, set, frozenset, dict):
        if t is not dict:
            # Fast path: a flat sequence of JSON-safe scalars encodes as the list of its items
            # (large outputs are mostly such; this avoids a recursive call per element).
            inf = float("inf")
            for v in value:
                tv = type(v)
                if tv is float:
                    if v != v or v == inf or v == -inf:
                        break
                elif tv is int:
                    if not -(2 ** 63) <= v < 2 ** 63:
                        break
                elif not (v is None or tv is str or tv is bool):
                    break
            else:
                items = list(value)
                if t is list:
                    return items
                if t is tuple:
                    return {"$tuple": items}
                return {"$set" if t is set else "$frozenset": items}
        active = set() if _active is None else _active
        if id(value) in active:
            raise UnsupportedValue("self-referencing container")
        active.add(id(value))
        try:
            if t is dict:
                return {"$dict": [[encode_value(k, _depth + 1, active), encode_value(v, _depth + 1, active)]
                                  for k, v in value.items()]}
            items = [encode_value(v, _depth + 1, active) for v in value]
        finally:
            active.discard(id(value))
        if t is list:
            return items
        if t is tuple:
            return {"$tuple": items}
        return {"$set" if t is set else "$frozenset": items}
    raise UnsupportedValue(f"unsupported type {t.__module__}.{t.__qualname__}")


def decode_value(data: Any, _depth: int = 0) -> Any:
    """Inverse of `encode_value` (builds only builtin values; raises ValueError on bad input)."""
    if _depth > 102:
        raise ValueError("typed JSON nested too deeply")
    t = type(data)
    if data is None or t in (bool, str, int, float):
        return data
    if t is list:
        for v in data:  # fast path: scalars decode as themselves
            if type(v) is list or type(v) is dict:
                return [decode_value(v, _depth + 1) for v in data]
        return data
    if t is not dict or len(data) != 1:
        raise ValueError(f"bad typed JSON value of type {t.__name__}")
    (tag, body), = data.items()
    if tag == "$int" and type(body) is str:
        return int(body, 16)
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$complex" and type(body) is list and len(body) == 2:
        return complex(decode_value(body[0], _depth + 1), decode_value(body[1], _depth + 1))
    if tag == "$bytes" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "$bytearray" and type(body) is str:
        return bytearray.fromhex(body)
    if type(body) is list:
        if tag == "$tuple":
            return tuple(decode_value(v, _depth + 1) for v in body)
        if tag == "$set":
            return {decode_value(v, _depth + 1) for v in body}
        if tag == "$frozenset":
            return frozenset(decode_value(v, _depth + 1) for v in body)
        if tag == "$dict":
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("bad $dict entry")
                out[decode_value(pair[0], _depth + 1)] = decode_value(pair[1], _depth + 1)
            return out
    raise ValueError(f"bad typed JSON tag {tag!r}")


def dumps_typed(value: Any) -> str:
    """`encode_value` then compact ASCII JSON text."""
    return json.dumps(encode_value(value), separators=(",", ":"), allow_nan=False)


def loads_typed(text: str) -> Any:
    """Inverse of `dumps_typed`."""
    return decode_value(json.loads(text))


# --------------------------------------------------------------------------------------------
# The in-sandbox driver.
# --------------------------------------------------------------------------------------------
_DRIVER_MAIN = r'''
import builtins as _b, hashlib as _hashlib, io as _io, marshal as _marshal, json as _json, os as _os, signal as _signal, sys as _sys, time as _time


class _Timeout(BaseException):
    pass


class _Sink(_io.StringIO):
    """Like evalplus's WriteOnlyStringIO: swallows writes, raises on reads."""

    def read(self, *a, **k):
        raise IOError

    def readline(self, *a, **k):
        raise IOError

    def readlines(self, *a, **k):
        raise IOError

    def readable(self, *a, **k):
        return False


def _guard():
    """The destructive-call guard evalplus's reliability_guard installs (no rlimits: the
    sandbox sets those)."""
    import faulthandler, shutil, subprocess
    faulthandler.disable()
    _b.exit = None
    _b.quit = None
    _os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
                 "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
                 "getcwd", "chdir"):
        setattr(_os, name, None)
    _b.open = None
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    _b.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        _sys.modules[name] = None


def _main():
    job = _json.loads(_sys.stdin.read())
    out_fd = _os.dup(1)
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    _os.dup2(devnull, 1)
    write = _os.write

    def emit(rec):
        data = (_json.dumps(rec, separators=(",", ":"), allow_nan=False) + "\n").encode()
        while data:
            data = data[write(out_fd, data):]

    sink = _Sink()
    real = (_sys.stdout, _sys.stderr, _sys.stdin)

    def swallow():
        _sys.stdout = _sys.stderr = _sys.stdin = sink

    def restore():
        _sys.stdout, _sys.stderr, _sys.stdin = real

    def on_alarm(signum, frame):
        raise _Timeout()

    limits = job["time_limits"]
    not_none = job.get("not_none")  # None | "ground_truth" | "candidate"
    items = [decode_value(x) for x in job["items"]]
    entry = job["entry_point"]
    ns = {}
    if job.get("guard"):
        _guard()
    try:
        swallow()
        exec(compile(job["code"], "<solution>", "exec"), ns)
        fn = ns[entry] if entry is not None else None
        restore()
    except BaseException as e:
        restore()
        emit({"load_error": type(e).__name__, "msg": str(e)[:300]})
        return
    emit({"loaded": True})
    for i, item in enumerate(items):
        kind, payload = item
        start = _time.perf_counter()
        try:
            _signal.signal(_signal.SIGALRM, on_alarm)
            _signal.setitimer(_signal.ITIMER_REAL, limits[i])
            try:
                swallow()
                if kind == "args":
                    out = fn(*payload)
                else:
                    out = eval(payload, ns)
            finally:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
                restore()
            took = _time.perf_counter() - start
        except _Timeout:
            emit({"i": i, "error": "Timeout", "timeout": True, "t": _time.perf_counter() - start})
            if job.get("stop_on_error", True):
                return
            continue
        except BaseException as e:
            restore()
            emit({"i": i, "error": type(e).__name__, "msg": str(e)[:300], "t": _time.perf_counter() - start})
            if job.get("stop_on_error", True):
                return
            continue
        if not_none == "ground_truth":
            out = out is not None
        elif not_none == "candidate" and type(out) is not bool:
            emit({"i": i, "not_none": out is not None, "t": took})
            continue
        big = None
        if type(out) in (list, tuple, str, bytes, dict, set, frozenset):
            try:
                blob = _marshal.dumps(out, 0)
            except BaseException:
                blob = b""
            limit = job.get("big_output", 1 << 25)
            if type(out) in (str, bytes) and job.get("big_str_output"):
                limit = job["big_str_output"]
            if len(blob) > limit:
                big = {"i": i, "digest": _hashlib.sha256(blob).hexdigest(), "size": len(blob), "t": took}
            del blob
        if big is not None:
            emit(big)
            continue
        try:
            enc = encode_value(out)
        except BaseException as e:
            emit({"i": i, "error": "Unsupported", "unsupported": True, "msg": str(e)[:300], "t": took})
            if job.get("stop_on_error", True):
                return
            continue
        emit({"i": i, "v": enc, "t": took})


_sys.setrecursionlimit(max(_sys.getrecursionlimit(), 10000))
_main()
'''


def _driver_source() -> str:
    parts = ["class UnsupportedValue(TypeError):\n    pass\n",
             inspect.getsource(encode_value), inspect.getsource(decode_value), _DRIVER_MAIN]
    return "\n\n".join(parts)


#: The program the sandbox runs; the job (code, inputs, limits) arrives on stdin as JSON.
DRIVER_SOURCE = _driver_source()


@dataclass(frozen=True)
class CallRecord:
    """What one input did in the sandbox.

    `kind` is "value" (returned `value`), "digest" (returned a value whose marshal form is
    larger than `BIG_OUTPUT_BYTES`; `value` is its `Digest`), "not_none" (`value` is whether a non-bool return
    value was not None; MBPP+ not-None tasks), "error" (raised `error`), "timeout" (hit its
    time limit), "unsupported" (returned a non-builtin value), or "missing" (no record: the
    run died or was killed before this input finished).
    """

    kind: str
    value: Any = None
    error: str = ""
    seconds: float = 0.0

    def observation(self) -> Any:
        """A JSON-compatible description of the behaviour (for fingerprints)."""
        if self.kind == "value":
            return {"v": encode_value(self.value)}
        if self.kind == "not_none":
            return {"not_none": bool(self.value)}
        if self.kind == "digest":
            return {"digest": self.value.sha256}
        if self.kind == "error":
            return {"error": self.error}
        return {self.kind: True}


@dataclass(frozen=True)
class RunReport:
    """All records of one driver run plus the sandbox's verdict on the process.

    `status` is the sandbox status ("ok", "timeout", "memory", ...), `load_error` the
    exception (type name) raised while the candidate's code was executed, if any.
    """

    records: list[CallRecord]
    status: str
    isolation: str
    wall_seconds: float
    load_error: str | None = None
    message: str = ""


def run_calls(
    sandbox: Any,
    code: str,
    entry_point: str | None,
    items: Sequence[tuple[str, Any]],
    time_limits: Sequence[float],
    *,
    guard: bool = True,
    not_none: str | None = None,
    stop_on_error: bool = True,
    wall_seconds: float | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_output_bytes: int = 16_000_000,
    big_str_output: int | None = None,
) -> RunReport:
    """Run `code` in `sandbox` and call `entry_point` on each item; return its records.

    `items` are ``("args", [arg, ...])`` (call the entry point with these arguments) or
    ``("expr", source)`` (evaluate this expression in the code's namespace). `time_limits`
    gives one limit (seconds) per item; `wall_seconds` the limit of the whole run (default:
    ``min(60, sum(time_limits)) + 1`` plus a second of start-up, as evalplus). `not_none`:
    None, "ground_truth" (return ``out is not None``) or "candidate" (non-bool returns are
    reported as not-None flags). With `stop_on_error`, the first exception ends the run.
    Returned values whose marshal form is over `BIG_OUTPUT_BYTES` (str/bytes: over
    `big_str_output`, when given) come back as a `Digest`.
    """
    from prmbench.sandbox import Limits

    if len(time_limits) != len(items):
        raise ValueError("one time limit per item is needed")
    job = {
        "code": code,
        "entry_point": entry_point,
        "items": [encode_value([k, p]) for k, p in items],
        "time_limits": [float(t) for t in time_limits],
        "guard": guard,
        "not_none": not_none,
        "stop_on_error": stop_on_error,
        "big_output": BIG_OUTPUT_BYTES,
        "big_str_output": big_str_output,
    }
    wall = wall_seconds if wall_seconds is not None else min(DEFAULT_TIMEOUT_PER_RUN, sum(time_limits)) + 2.0
    limits = Limits(wall_seconds=wall, cpu_seconds=wall, memory_mb=memory_mb,
                    max_output_bytes=max_output_bytes, max_processes=16)
    res = sandbox.run(DRIVER_SOURCE, json.dumps(job, separators=(",", ":")), limits)
    return parse_driver_output(res.stdout, len(items), res.status, res.isolation, res.wall_seconds,
                               res.message or res.stderr[-500:])


def parse_driver_output(stdout: str, n_items: int, status: str, isolation: str, wall: float,
                        message: str = "") -> RunReport:
    """Turn the driver's JSON lines into a `RunReport` (unparsable lines are ignored; items
    without a record are "missing")."""
    records: list[CallRecord | None] = [None] * n_items
    load_error = None
    loaded = False
    for line in stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        if "load_error" in rec and not loaded:
            load_error = str(rec["load_error"])
            continue
        if rec.get("loaded") is True:
            loaded = True
            continue
        i = rec.get("i")
        if type(i) is not int or not 0 <= i < n_items or records[i] is not None:
            continue
        t = float(rec.get("t", 0.0)) if isinstance(rec.get("t"), (int, float)) else 0.0
        if "digest" in rec:
            records[i] = CallRecord("digest", Digest(str(rec["digest"]), int(rec.get("size", 0))), seconds=t)
        elif "v" in rec:
            try:
                records[i] = CallRecord("value", decode_value(rec["v"]), seconds=t)
            except (ValueError, TypeError, OverflowError):
                records[i] = CallRecord("unsupported", seconds=t)
        elif "not_none" in rec:
            records[i] = CallRecord("not_none", bool(rec["not_none"]), seconds=t)
        elif rec.get("timeout"):
            records[i] = CallRecord("timeout", error="Timeout", seconds=t)
        elif rec.get("unsupported"):
            records[i] = CallRecord("unsupported", error=str(rec.get("msg", ""))[:200], seconds=t)
        else:
            records[i] = CallRecord("error", error=str(rec.get("error", "Exception")), seconds=t)
    if not loaded and load_error is None and status == "ok":
        load_error = "NoOutput"
    out = [r if r is not None else CallRecord("missing") for r in records]
    return RunReport(out, status, isolation, wall, load_error, message[:500])


# --------------------------------------------------------------------------------------------
# Comparison (evalplus semantics), on the trusted side.
# --------------------------------------------------------------------------------------------
def is_floats(x: Any) -> bool:
    """A float, or a non-empty list/tuple of floats (evalplus's ``is_floats``)."""
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def poly(xs: Sequence[float], x: float) -> float:
    """``sum(c * x**i)`` with ``math.pow`` (the HumanEval/32 oracle's polynomial)."""
    return sum([c * math.pow(x, i) for i, c in enumerate(xs)])


def _surface_area(base_edge: float, height: float) -> float:
    """Mbpp/581 reference: square pyramid surface area with `height` as the apex height, rounded."""
    slant = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 2 * base_edge * slant)


def _digit_distance(a: int, b: int) -> int:
    """Mbpp/558 reference: digit-wise distance after zero-padding to the same length."""
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))


class EvalplusComparator:
    """Compares one run's outputs with the expected ones, input by input, as evalplus does.

    Create one per run (base or plus): the float-tolerance promotion sticks across inputs of
    the run like evalplus's ``atol`` variable. `dataset` is "humaneval" or "mbpp".
    """

    def __init__(self, dataset: str, entry_point: str, atol: float) -> None:
        self.dataset = dataset
        self.entry_point = entry_point
        self.atol = float(atol) if atol else 0.0
        self._int_atol = atol == 0

    def matches(self, record: CallRecord, expected: Any, inp: Sequence[Any]) -> bool:
        """Whether `record` passes against `expected` for input `inp` (arguments list)."""
        if record.kind == "not_none":
            exact = expected == record.value
            return self._tolerance_step(exact, None, expected, use_out=False)
        if isinstance(expected, Digest) or record.kind == "digest":
            return record.kind == "digest" and isinstance(expected, Digest) and record.value == expected
        if record.kind != "value":
            return False
        out = record.value
        try:
            exact = bool(out == expected)
        except Exception:
            return False
        ep = self.entry_point
        try:
            if self.dataset == "mbpp":
                if ep == "are_equivalent":
                    exact = True
                elif ep == "sum_div":
                    exact = exact or out == 0
                elif ep == "surface_Area":
                    exact = exact or abs(out - _surface_area(*inp)) <= self.atol
                elif ep == "digit_distance_nums":
                    exact = exact or out == _digit_distance(*inp)
                elif ep in MBPP_SET_EQ_ENTRY_POINTS:
                    exact = set(out) == set(expected)
                elif ep in MBPP_NOT_NONE_ENTRY_POINTS:
                    exact = out == expected if isinstance(out, bool) else expected == (out is not None)
            if self.dataset == "humaneval" and ep == "find_zero":
                return abs(poly(*inp, out)) <= self.atol
        except Exception:
            return False
        return self._tolerance_step(exact, out, expected)

    def _tolerance_step(self, exact: bool, out: Any, expected: Any, use_out: bool = True) -> bool:
        if self.atol == 0 and is_floats(expected):
            self.atol = 1e-6
        if not exact and self.atol != 0:
            if not use_out:
                return False
            try:
                import numpy as np

                if type(out) is not type(expected):
                    return False
                if isinstance(expected, (list, tuple)) and len(out) != len(expected):
                    return False
                return bool(np.allclose(out, expected, rtol=1e-07, atol=self.atol))
            except Exception:
                return False
        return bool(exact)


def time_limits_for(gt_times: Sequence[float], min_time_limit: float = DEFAULT_MIN_TIME_LIMIT,
                    factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR) -> list[float]:
    """Per-input limits ``max(min_time_limit, factor * t)`` (evalplus ``untrusted_check``)."""
    return [max(min_time_limit, factor * float(t)) for t in gt_times]


@dataclass(frozen=True)
class Verdict:
    """The outcome of judging one run (base or plus inputs).

    `status`: "pass"; "fail" (a wrong output, or a non-builtin one: ``reason`` says which);
    "error" (an exception, also while loading the code); "timeout" (an input's limit or the
    run's); "memory"; "output_limit"; "sandbox_error"; "not_run". `first_failure` is the
    index of the first input that did not pass (None when all passed).
    """

    status: str
    passed: int
    total: int
    first_failure: int | None = None
    reason: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {"status": self.status, "passed": self.passed, "total": self.total,
                "first_failure": self.first_failure, "reason": self.reason, "seconds": round(self.seconds, 4)}


def judge_run(report: RunReport, expected: Sequence[Any], inputs: Sequence[Sequence[Any]],
              comparator: EvalplusComparator) -> Verdict:
    """Compare a run's records with `expected` in order; the first failure decides."""
    n = len(expected)
    if report.load_error is not None:
        return Verdict("error", 0, n, 0 if n else None, f"loading the code raised {report.load_error}",
                       report.wall_seconds)
    for i, rec in enumerate(report.records):
        if rec.kind == "missing":
            status = {"ok": "error", "runtime_error": "error"}.get(report.status, report.status)
            why = report.message or "the program ended before this input finished"
            return Verdict(status, i, n, i, f"no result for input {i}: {report.status} {why}"[:300], report.wall_seconds)
        if rec.kind == "timeout":
            return Verdict("timeout", i, n, i, f"input {i} exceeded its time limit", report.wall_seconds)
        if rec.kind == "error":
            return Verdict("error", i, n, i, f"input {i} raised {rec.error}", report.wall_seconds)
        if rec.kind == "unsupported":
            return Verdict("fail", i, n, i, f"input {i} returned a non-builtin value ({rec.error})"[:300],
                           report.wall_seconds)
        if not comparator.matches(rec, expected[i], inputs[i]):
            return Verdict("fail", i, n, i, f"input {i}: wrong output", report.wall_seconds)
    return Verdict("pass", n, n, None, "", report.wall_seconds)


def _json_size_estimate(value: Any) -> int:
    """About the size of `value`'s typed JSON, computed by the C JSON encoder (for output caps).

    Typed JSON adds short tags to tuples, sets and big ints; the output cap leaves 8x headroom,
    so plain `json.dumps` (sets and other non-JSON values as their repr) is close enough and
    avoids a pure-Python walk over every element of every expected output on each judgement.
    """
    try:
        return len(json.dumps(value, default=repr, skipkeys=True))
    except (ValueError, TypeError, RecursionError):  # e.g. ints past Python's str-conversion limit
        return len(json.dumps(encode_value(value)))


def expected_output_bytes(expected: Sequence[Any]) -> int:
    """About the size of the typed JSON the expected outputs would come back as."""
    return sum(200 if isinstance(e, Digest) else _json_size_estimate(e) for e in expected)


def run_and_judge(sandbox: Any, code: str, entry_point: str, inputs: Sequence[Sequence[Any]],
                  expected: Sequence[Any], gt_times: Sequence[float], *, dataset: str, atol: float,
                  min_time_limit: float = DEFAULT_MIN_TIME_LIMIT,
                  factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR,
                  memory_mb: int = DEFAULT_MEMORY_MB,
                  expected_bytes: int | None = None) -> tuple[Verdict, str]:
    """Run a candidate on `inputs` in the sandbox and judge it; returns (verdict, isolation).

    `expected_bytes` (`expected_output_bytes(expected)`, which callers judging many samples
    against the same ground truth compute once) sizes the output cap.

    The sandbox never sees `expected`. An empty input list passes without running.
    """
    if not inputs:
        return Verdict("pass", 0, 0), getattr(sandbox, "isolation", "")
    limits = time_limits_for(gt_times, min_time_limit, factor)
    not_none = "candidate" if dataset == "mbpp" and entry_point in MBPP_NOT_NONE_ENTRY_POINTS else None
    out_bytes = expected_output_bytes(expected) if expected_bytes is None else expected_bytes
    report = run_calls(sandbox, code, entry_point, [("args", list(a)) for a in inputs], limits,
                       guard=True, not_none=not_none, memory_mb=memory_mb,
                       max_output_bytes=max(2_000_000, 8 * out_bytes + 100_000),
                       big_str_output=str_digest_threshold(dataset, entry_point))
    verdict = judge_run(report, expected, inputs, EvalplusComparator(dataset, entry_point, atol))
    return verdict, report.isolation
