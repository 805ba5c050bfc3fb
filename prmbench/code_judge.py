"""Trusted-supervisor judging of function-call code tasks (HumanEval+, MBPP+) in the sandbox.

Design
    The sandboxed side only *runs*: `DRIVER_SOURCE` is a small Python program that reads a
    JSON job from stdin (the candidate's source, the entry point, the inputs as typed JSON and
    a time limit per input), executes the candidate, calls it on each input under that limit,
    and writes one JSON line per input with the return value as typed JSON (or the exception
    it raised), in batches of 64 KiB or 2 ms. Expected outputs never enter the sandbox, and
    nothing is unpickled: the
    supervisor decodes plain JSON into builtin values and compares them itself
    (`EvalplusComparator`). An "always equal" object or a program that peeks at its caller's
    frames therefore cannot pass: non-builtin return values are reported as a failure
    (``unsupported``) and there is nothing to peek at.

Big outputs
    Where an expected output's typed JSON is at least `CANON_MIN_BYTES` and evalplus compares
    it with plain ``==`` (no special oracle, no float tolerance), the job names that input and
    the driver returns the `canon_digest` of the output instead of the output: a hash of a
    canonical form that is equal exactly when ``==`` is (see `canon_digest`), so the verdict
    is unchanged while megabytes stay out of the pipe. The sandbox learns only which inputs
    these are, never the expected digest, so it cannot forge a match.

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
    * The driver does not stop at a wrong answer (only the supervisor knows it is wrong), and
      it writes records in 2 ms batches: a run later killed from outside (wall deadline,
      crash) may report that kill's status, or lose the records of its last 2 ms, where
      evalplus would have stopped at the earlier wrong answer. Pass/fail is the same.
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
JUDGE_VERSION = "3"


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
def _dict_like(t: type) -> bool:
    """Whether `t` is a stdlib dict subclass holding plain dict data (MBPP+ canonical solutions
    return Counter, OrderedDict, defaultdict), which typed JSON treats as a dict."""
    if t is dict or t in (list, tuple, set, frozenset):
        return False
    import collections as _collections

    return t in (_collections.Counter, _collections.OrderedDict, _collections.defaultdict)


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
    if _dict_like(t):
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


def canon_digest(value: Any) -> str | None:
    """sha256 of a canonical form in which two builtin values are equal exactly when ``==``
    says so (after typed-JSON decoding), or None when `value` has no such form here (NaN,
    ints past Python's digit limit, non-builtin types, nesting over `MAX_DEPTH`).

    The form: a list, tuple, set or frozenset of numbers that are all exact doubles is the
    sha256 of their IEEE bytes (sorted for sets, -0.0 as 0.0; C-speed for the megabyte lists
    big outputs are); everything else is JSON with bools and integral floats as ints,
    infinities as ``Infinity``, complex numbers with a zero imaginary part as their real part,
    bytes and bytearray alike, tuples tagged apart from lists, sets and frozensets alike with
    sorted elements, and dicts (and the dict subclasses typed JSON accepts) as key-sorted pairs.
    Used for big outputs whose comparison is plain ``==``.
    """
    import array as _array
    import hashlib as _hl
    import json as _js

    def dumps(v):
        return _js.dumps(v, separators=(",", ":"), allow_nan=True)

    def doubles(seq, t):
        """The IEEE-bytes form of a sequence of exact doubles, or None."""
        try:
            arr = _array.array("d", seq)
        except (TypeError, OverflowError):
            return None
        if arr.tolist() != list(seq):  # an int no double holds exactly, or NaN
            return None
        if _array.array("Q", arr.tobytes()).count(1 << 63):  # -0.0 == 0.0
            arr = _array.array("d", [x + 0.0 for x in arr])
        if t is set:
            arr = _array.array("d", sorted(arr))
        return {"d" + ("l" if t is list else "t" if t is tuple else "s"): _hl.sha256(arr.tobytes()).hexdigest()}

    def walk(v, depth):
        if depth > 100:
            raise ValueError("nested too deeply")
        t = type(v)
        if v is None or t is str or t is int:
            return v
        if t is bool:
            return int(v)
        if t is float:
            return int(v) if v.is_integer() else v
        if t is complex:
            if v.imag == 0:
                return walk(v.real, depth + 1)
            return {"c": [walk(v.real, depth + 1), walk(v.imag, depth + 1)]}
        if t is bytes or t is bytearray:
            return {"b": bytes(v).hex()}
        if _dict_like(t):
            t = dict
        elif t not in (list, tuple, set, frozenset, dict):
            raise ValueError("unsupported type")
        if t is dict:
            return {"m": sorted([dumps(walk(k, depth + 1)), walk(x, depth + 1)] for k, x in v.items())}
        if t is frozenset:
            t = set
        fast = doubles(v, t)
        if fast is not None:
            return fast
        if any(type(x) is complex for x in v):  # complex numbers with a zero imaginary part are numbers
            fast = doubles([x.real if type(x) is complex and x.imag == 0 else x for x in v], t)
            if fast is not None:
                return fast
        items = [walk(x, depth + 1) for x in v]
        if t is set:
            return {"s": sorted(dumps(x) for x in items)}
        return items if t is list else {"t": items}

    try:
        text = dumps(walk(value, 0))
    except (ValueError, TypeError, RecursionError):
        return None
    if "NaN" in text:  # NaN equals nothing; (a string containing "NaN" merely loses the shortcut)
        return None
    return _hl.sha256(text.encode()).hexdigest()


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

    # Records are written in batches (64 KiB, or 2 ms after the first unwritten one): a run
    # killed from outside loses at most the records of its last 2 ms.
    pending = []
    state = {"size": 0, "since": 0.0}

    def flush():
        if pending:
            data = "".join(pending).encode()
            pending.clear()
            state["size"] = 0
            while data:
                data = data[write(out_fd, data):]

    encode = _json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # one encoder for all records

    def emit(rec):
        line = encode(rec) + "\n"
        if not pending:
            state["since"] = _time.perf_counter()
        pending.append(line)
        state["size"] += len(line)
        if state["size"] >= 65536 or _time.perf_counter() - state["since"] >= 0.002:
            flush()

    sink = _Sink()
    real = (_sys.stdout, _sys.stderr, _sys.stdin)

    def swallow():
        _sys.stdout = _sys.stderr = _sys.stdin = sink

    def restore():
        _sys.stdout, _sys.stderr, _sys.stdin = real

    def on_alarm(signum, frame):
        raise _Timeout()

    limits = job["time_limits"]
    canon = set(job.get("canon") or ())  # inputs whose output comes back as its canon_digest
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
        flush()
        return
    emit({"loaded": True})
    try:
        for i, item in enumerate(items):
            kind, payload = item
            start = _time.perf_counter()
            try:
                _signal.signal(_signal.SIGALRM, on_alarm)  # again per input: the candidate may have replaced it
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
            if i in canon:
                digest = canon_digest(out)
                if digest is not None:
                    emit({"i": i, "canon": digest, "t": took})
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
    finally:
        flush()


_sys.setrecursionlimit(max(_sys.getrecursionlimit(), 10000))
_main()
'''


def typed_json_source() -> str:
    """Source of `encode_value` / `decode_value` (and what they need) for in-sandbox programs."""
    parts = ["class UnsupportedValue(TypeError):\n    pass\n", inspect.getsource(_dict_like),
             inspect.getsource(encode_value), inspect.getsource(decode_value)]
    return "\n\n".join(parts)


def _driver_source() -> str:
    return "\n\n".join([typed_json_source(), inspect.getsource(canon_digest), _DRIVER_MAIN])


#: The program the sandbox runs; the job (code, inputs, limits) arrives on stdin as JSON.
DRIVER_SOURCE = _driver_source()


@dataclass(frozen=True)
class CallRecord:
    """What one input did in the sandbox.

    `kind` is "value" (returned `value`), "digest" (returned a value whose marshal form is
    larger than `BIG_OUTPUT_BYTES`; `value` is its `Digest`), "not_none" (`value` is whether a non-bool return
    value was not None; MBPP+ not-None tasks), "canon" (`value` is the `canon_digest` of the
    returned value, for inputs the run asked that of), "error" (raised `error`), "timeout" (hit its
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
        if self.kind == "canon":
            return {"canon": self.value}
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
    canon: Sequence[int] = (),
    items_json: str | None = None,
) -> RunReport:
    """Run `code` in `sandbox` and call `entry_point` on each item; return its records.

    `items` are ``("args", [arg, ...])`` (call the entry point with these arguments) or
    ``("expr", source)`` (evaluate this expression in the code's namespace). `time_limits`
    gives one limit (seconds) per item; `wall_seconds` the limit of the whole run (default:
    ``min(60, sum(time_limits)) + 1`` plus a second of start-up, as evalplus). `not_none`:
    None, "ground_truth" (return ``out is not None``) or "candidate" (non-bool returns are
    reported as not-None flags). With `stop_on_error`, the first exception ends the run.
    Returned values whose marshal form is over `BIG_OUTPUT_BYTES` (str/bytes: over
    `big_str_output`, when given) come back as a `Digest`. The outputs of the inputs listed in
    `canon` come back as their `canon_digest` (kind "canon") where they have one.
    `items_json` is `encode_items(items)`, for callers that run the same items many times.
    """
    from prmbench.sandbox import Limits

    if len(time_limits) != len(items):
        raise ValueError("one time limit per item is needed")
    job = {
        "code": code,
        "entry_point": entry_point,
        "canon": sorted(set(canon)),
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
    body = json.dumps(job, separators=(",", ":"))
    stdin = body[:-1] + ',"items":' + (encode_items(items) if items_json is None else items_json) + "}"
    res = sandbox.run(DRIVER_SOURCE, stdin, limits, trusted=True)
    return parse_driver_output(res.stdout, len(items), res.status, res.isolation, res.wall_seconds,
                               res.message or res.stderr[-500:], canon=canon)


def encode_items(items: Sequence[tuple[str, Any]]) -> str:
    """The typed-JSON text of a run's items (``[[kind, payload], ...]``).

    Items that plain JSON already represents exactly (no tuples, sets, dicts, bytes, NaN or
    infinities: the common case of data sets stored as JSON) skip the pure-Python typed walk.
    """
    plain = [[k, p] for k, p in items]
    try:
        text = json.dumps(plain, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = None
    if text is not None and "{" not in text and json.loads(text) == plain:
        return text
    return json.dumps(encode_value(plain), separators=(",", ":"), allow_nan=False)


def _json_lines(stdout: str) -> list[Any]:
    """The JSON values of the non-empty lines (one C-level parse; line by line, skipping
    unparsable ones, only when that fails)."""
    lines = [ln for ln in stdout.split("\n") if ln]
    try:
        return json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        pass
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def parse_driver_output(stdout: str, n_items: int, status: str, isolation: str, wall: float,
                        message: str = "", canon: Sequence[int] = ()) -> RunReport:
    """Turn the driver's JSON lines into a `RunReport` (unparsable lines are ignored; items
    without a record are "missing"; "canon" records count only for the inputs in `canon`)."""
    records: list[CallRecord | None] = [None] * n_items
    load_error = None
    loaded = False
    canon_ok = set(canon)
    for rec in _json_lines(stdout):
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
        if "canon" in rec:
            if i in canon_ok and isinstance(rec["canon"], str):
                records[i] = CallRecord("canon", rec["canon"], seconds=t)
        elif "digest" in rec:
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
              comparator: EvalplusComparator, expected_canon: Sequence[str | None] = ()) -> Verdict:
    """Compare a run's records with `expected` in order; the first failure decides.

    A "canon" record matches when it equals `expected_canon[i]` (the run asks for those only
    where the comparison is plain ``==``, see `JudgeCase`)."""
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
        if rec.kind == "canon":
            ok = i < len(expected_canon) and expected_canon[i] is not None and rec.value == expected_canon[i]
        else:
            ok = comparator.matches(rec, expected[i], inputs[i])
        if not ok:
            return Verdict("fail", i, n, i, f"input {i}: wrong output", report.wall_seconds)
    return Verdict("pass", n, n, None, "", report.wall_seconds)


#: Expected outputs whose typed JSON is at least this big come back as a `canon_digest` where
#: the comparison is plain ``==`` (HumanEval/130: 114 MB of output per run otherwise).
CANON_MIN_BYTES = 1 << 12

#: Entry points with a special oracle: their outputs always come back whole.
ORACLE_ENTRY_POINTS = {
    "humaneval": frozenset({"find_zero"}),
    "mbpp": frozenset({"are_equivalent", "sum_div", "surface_Area", "digit_distance_nums"})
    | MBPP_SET_EQ_ENTRY_POINTS | MBPP_NOT_NONE_ENTRY_POINTS,
}


def output_size(value: Any) -> int:
    """About the size of `value`'s typed JSON, computed by the C JSON encoder (for output caps).

    Typed JSON adds short tags to tuples, sets and big ints; the output cap leaves 8x headroom,
    so plain `json.dumps` (sets and other non-JSON values as their repr) is close enough and
    avoids a pure-Python walk over every element.
    """
    if isinstance(value, Digest):
        return 200
    try:
        return len(json.dumps(value, default=repr, skipkeys=True))
    except (ValueError, TypeError, RecursionError):  # e.g. ints past Python's str-conversion limit
        return len(json.dumps(encode_value(value)))


def expected_canon_digests(expected: Sequence[Any], sizes: Sequence[int]) -> list[str | None]:
    """`canon_digest` of each expected output of at least `CANON_MIN_BYTES` (else None)."""
    return [canon_digest(e) if size >= CANON_MIN_BYTES and not isinstance(e, Digest) else None
            for e, size in zip(expected, sizes)]


@dataclass(frozen=True)
class JudgeCase:
    """One split (base or plus) of one problem, prepared once for judging any number of programs.

    `canon_indices` are the inputs whose outputs come back as a `canon_digest`: those with a
    big expected output, no special oracle, and plain ``==`` as evalplus's comparison (no
    float tolerance yet: ``atol`` is 0 and neither this nor an earlier expected output is a
    float or a list of floats). The sandbox only learns which inputs these are.
    """

    dataset: str
    entry_point: str
    atol: float
    inputs: Sequence[Sequence[Any]]
    expected: Sequence[Any]
    time_limits: tuple[float, ...]
    items_json: str
    max_output_bytes: int
    expected_canon: tuple[str | None, ...]
    canon_indices: tuple[int, ...]

    @classmethod
    def prepare(cls, entry_point: str, inputs: Sequence[Sequence[Any]], expected: Sequence[Any],
                gt_times: Sequence[float], *, dataset: str, atol: float,
                min_time_limit: float = DEFAULT_MIN_TIME_LIMIT, factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR,
                sizes: Sequence[int] | None = None, canon: Sequence[str | None] | None = None) -> JudgeCase:
        """Build the case; `sizes` (`output_size` per expected output) and `canon`
        (`expected_canon_digests`) are computed here unless the ground truth stores them."""
        sizes = [output_size(e) for e in expected] if sizes is None else list(sizes)
        canon = expected_canon_digests(expected, sizes) if canon is None else list(canon)
        indices: list[int] = []
        if entry_point not in ORACLE_ENTRY_POINTS.get(dataset, ()):
            eff = float(atol or 0)
            for i, e in enumerate(expected):
                if eff == 0 and is_floats(e):
                    eff = 1e-6
                if eff == 0 and canon[i] is not None:
                    indices.append(i)
        return cls(dataset, entry_point, float(atol or 0), inputs, expected,
                   tuple(time_limits_for(gt_times, min_time_limit, factor)),
                   encode_items([("args", list(a)) for a in inputs]),
                   max(2_000_000, 8 * sum(sizes) + 100_000), tuple(canon), tuple(indices))


def judge_case(sandbox: Any, code: str, case: JudgeCase, memory_mb: int = DEFAULT_MEMORY_MB) -> tuple[Verdict, str]:
    """Run a candidate on a prepared case in the sandbox and judge it; returns (verdict, isolation).

    The sandbox never sees the expected outputs. An empty input list passes without running.
    """
    if not case.inputs:
        return Verdict("pass", 0, 0), getattr(sandbox, "isolation", "")
    ep, dataset = case.entry_point, case.dataset
    not_none = "candidate" if dataset == "mbpp" and ep in MBPP_NOT_NONE_ENTRY_POINTS else None
    report = run_calls(sandbox, code, ep, [("args", a) for a in case.inputs], case.time_limits,
                       guard=True, not_none=not_none, memory_mb=memory_mb, max_output_bytes=case.max_output_bytes,
                       big_str_output=str_digest_threshold(dataset, ep), canon=case.canon_indices,
                       items_json=case.items_json)
    verdict = judge_run(report, case.expected, case.inputs, EvalplusComparator(dataset, ep, case.atol),
                        case.expected_canon)
    return verdict, report.isolation


def run_and_judge(sandbox: Any, code: str, entry_point: str, inputs: Sequence[Sequence[Any]],
                  expected: Sequence[Any], gt_times: Sequence[float], *, dataset: str, atol: float,
                  min_time_limit: float = DEFAULT_MIN_TIME_LIMIT,
                  factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR,
                  memory_mb: int = DEFAULT_MEMORY_MB) -> tuple[Verdict, str]:
    """`judge_case` on a case prepared for this one program (see `JudgeCase.prepare`)."""
    case = JudgeCase.prepare(entry_point, inputs, expected, gt_times, dataset=dataset, atol=atol,
                             min_time_limit=min_time_limit, factor=factor)
    return judge_case(sandbox, code, case, memory_mb)
