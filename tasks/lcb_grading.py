"""LiveCodeBench grading pieces: the programs run in the sandbox and the trusted comparators.

Nothing here runs candidate code: `stdio_program` and `functional_program` build the program
text that the sandbox executes, and the comparators judge what came back, on the trusted side.
Expected outputs never enter the sandbox.

Programs
    Both start with `PRELUDE`: the imports upstream's harness prepends (``from math import *``,
    ``from typing import *``, ``import collections`` ...; LeetCode starter code uses ``List``
    without importing it) and ``sys.setrecursionlimit(50000)``. The candidate's source then
    runs unchanged through ``exec``: a stdin program in the namespace of the real ``__main__``
    module of its own process, reading its real stdin pipe; ``SystemExit`` is treated as a
    normal end of the program, as upstream does. A functional program is loaded as module ``tmp_sol``, ``Solution().<func_name>`` (or a
    module-level ``<func_name>`` when there is no ``Solution`` class, as upstream allows) is
    called with the arguments parsed from stdin (one JSON value per line) while the candidate's
    own prints go to stderr, and the return value is written to stdout as *typed JSON* (tuples,
    sets, non-string dict keys and integers of any size kept apart from lists, strings and
    floats; other objects become an `Opaque` that equals nothing; see `decode_typed`). Blank
    lines of a functional input are skipped (upstream would fail on them).

Differences from upstream's in-process harness (``lcb_runner/evaluation/testing_util.py``)
    Every test is a fresh sandboxed process with real pipes instead of one ``exec`` with a
    mocked ``sys.stdin``/``open``; the stdin program is not wrapped into a function, so module
    level code behaves as in a script; the limit is CPU time per test (see the task's
    ``timeout``) rather than a wall-clock ``signal.alarm``; a LeetCode method gets a fresh
    ``Solution()`` per test (upstream reuses one instance). Return values cross back as typed
    JSON, so equality is still Python's ``==`` on the same types (nested tuples stay tuples).

Comparators (selected by name, see `COMPARATORS`)
    ``strict`` is LiveCodeBench's rule. stdin problems, as upstream's ``grade_stdio``: strip the
    whole output, split it at ``\\n``, strip every line; the line counts must match; each line
    must be equal as text or else, after splitting at whitespace, every token of both lines must
    parse as a ``decimal.Decimal`` and the two token lists must be equal as Decimals (so ``1.0``
    equals ``1`` and ``1e2`` equals ``100``, but ``0.3333333333`` differs from
    ``0.3333333333333333``: there is no tolerance). Functional problems, as upstream's
    ``grade_call_based``: a returned tuple becomes a list, then Python ``==`` against the
    expected JSON value (so ``True == 1`` and ``2.0 == 2``, no float tolerance).

    ``float`` is a tolerant variant: the same line structure, but lines are compared token by
    token (whitespace runs do not matter) and tokens that both parse as floats match when
    ``|a - b| <= max(atol, rtol * |b|)`` (1e-6 each by default); functional values are compared
    recursively with the same rule for numbers and with tuples treated as lists.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

#: Imports upstream's harness makes available to every program, plus its recursion limit.
PRELUDE = "\n".join(
    [f"from {m} import *" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy",
                                     "math", "random", "statistics", "itertools", "functools", "operator",
                                     "io", "sys", "json", "builtins", "typing")]
    + ["import string, re, datetime, collections, heapq, bisect, copy, math, random, statistics, itertools, "
       "functools, operator, io, sys, json", "sys.setrecursionlimit(50000)", ""]
)

_STDIO_TEMPLATE = '''\
import sys as _lcb_sys
_lcb_src = {src!r}
_lcb_ns = globals()
exec({prelude!r}, _lcb_ns)
try:
    exec(compile(_lcb_src, "<solution>", "exec"), _lcb_ns)
except SystemExit:
    pass
try:
    _lcb_sys.stdout.flush()
except Exception:
    pass
'''

_FUNCTIONAL_TEMPLATE = '''\
import json as _lcb_json, numbers as _lcb_numbers, os as _lcb_os, sys as _lcb_sys

_lcb_fd = _lcb_os.dup(1)
_lcb_os.dup2(2, 1)


def _lcb_emit(obj):
    data = (_lcb_json.dumps(obj, allow_nan=True) + "\\n").encode()
    while data:
        data = data[_lcb_os.write(_lcb_fd, data):]


def _lcb_enc(x):
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        x = int(x)
        return x if -(1 << 63) <= x < (1 << 63) else {{"$int": hex(x)}}
    if isinstance(x, float):
        return float(x)
    if isinstance(x, list):
        return [_lcb_enc(v) for v in x]
    if isinstance(x, tuple):
        return {{"$tuple": [_lcb_enc(v) for v in x]}}
    if isinstance(x, (set, frozenset)):
        return {{"$frozenset" if isinstance(x, frozenset) else "$set": [_lcb_enc(v) for v in x]}}
    if isinstance(x, dict):
        return {{"$dict": [[_lcb_enc(k), _lcb_enc(v)] for k, v in x.items()]}}
    if isinstance(x, _lcb_numbers.Integral):
        return _lcb_enc(int(x))
    if isinstance(x, _lcb_numbers.Real):
        return float(x)
    return {{"$opaque": type(x).__name__, "repr": repr(x)[:200]}}


_lcb_text = _lcb_sys.stdin.read()
try:
    _lcb_args = [_lcb_json.loads(line) for line in _lcb_text.split("\\n") if line.strip()]
except ValueError as e:
    _lcb_emit({{"error": "bad_input", "message": str(e)[:300]}})
    _lcb_sys.exit(0)
import types as _lcb_types
_lcb_mod = _lcb_types.ModuleType("tmp_sol")
_lcb_sys.modules["tmp_sol"] = _lcb_mod
_lcb_ns = _lcb_mod.__dict__
exec({prelude!r}, _lcb_ns)
exec(compile({src!r}, "<solution>", "exec"), _lcb_ns)
if "Solution" in _lcb_ns:
    _lcb_fn = getattr(_lcb_ns["Solution"](), {func!r}, None)
else:
    _lcb_fn = _lcb_ns.get({func!r})
if not callable(_lcb_fn):
    _lcb_emit({{"error": "missing_method", "message": "no callable Solution().{func} in the program"}})
    _lcb_sys.exit(0)
_lcb_out = _lcb_fn(*_lcb_args)
if isinstance(_lcb_out, tuple):
    _lcb_out = list(_lcb_out)
try:
    _lcb_sys.stdout.flush()
except Exception:
    pass
_lcb_emit({{"result": _lcb_enc(_lcb_out)}})
'''


def stdio_program(code: str) -> str:
    """The sandbox program for a stdin problem: the prelude, then `code` as ``__main__``."""
    return _STDIO_TEMPLATE.format(src=code, prelude=PRELUDE)


def functional_program(code: str, func_name: str) -> str:
    """The sandbox program for a functional problem (see the module docstring)."""
    if not func_name.isidentifier():
        raise ValueError(f"not a method name: {func_name!r}")
    return _FUNCTIONAL_TEMPLATE.format(src=code, prelude=PRELUDE, func=func_name)


# -- typed JSON -------------------------------------------------------------------------------
class Opaque:
    """A returned value that has no JSON form (an arbitrary object): equal to nothing."""

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name = type_name
        self.text = text

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.text}>"


def decode_typed(obj: Any) -> Any:
    """Rebuild the Python value the sandbox encoded (tuples, sets, dicts with any keys)."""
    if isinstance(obj, list):
        return [decode_typed(v) for v in obj]
    if isinstance(obj, dict):
        if "$tuple" in obj:
            return tuple(decode_typed(v) for v in obj["$tuple"])
        if "$set" in obj:
            return {decode_typed(v) for v in obj["$set"]}
        if "$frozenset" in obj:
            return frozenset(decode_typed(v) for v in obj["$frozenset"])
        if "$dict" in obj:
            return {decode_typed(k): decode_typed(v) for k, v in obj["$dict"]}
        if "$int" in obj:
            return int(str(obj["$int"]), 16)
        if "$opaque" in obj:
            return Opaque(str(obj["$opaque"]), str(obj.get("repr", "")))
        raise ValueError(f"unknown typed-JSON object {sorted(obj)}")
    return obj


def parse_functional_stdout(stdout: str) -> tuple[str, Any]:
    """``("ok", value)`` from a functional program's stdout, or ``(error kind, message)``."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        return "no_result", "the program printed no result"
    try:
        msg = json.loads(lines[-1])
    except ValueError:
        return "no_result", "unparseable result line"
    if not isinstance(msg, Mapping):
        return "no_result", "unparseable result line"
    if "result" in msg:
        try:
            return "ok", decode_typed(msg["result"])
        except (ValueError, TypeError) as e:
            return "no_result", f"bad typed JSON: {e}"
    return str(msg.get("error", "no_result")), str(msg.get("message", ""))


# -- comparators ------------------------------------------------------------------------------
def stripped_lines(text: str) -> list[str]:
    """Upstream's line split: strip the text, split at ``\\n``, strip each line."""
    return [ln.strip() for ln in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(tok) for tok in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdio_equal_strict(got: str, expected: str) -> bool:
    """LiveCodeBench's ``grade_stdio`` rule (see the module docstring)."""
    a, b = stripped_lines(got), stripped_lines(expected)
    if len(a) != len(b):
        return False
    for la, lb in zip(a, b):
        if la == lb:
            continue
        da, db = _decimals(la), _decimals(lb)
        if da is None or db is None:
            return False
        try:
            if da != db:
                return False
        except InvalidOperation:  # signalling NaN: upstream errors out, i.e. the test fails
            return False
    return True


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(atol, rtol * abs(b))


def _as_float(tok: str) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def stdio_equal_float(got: str, expected: str, rtol: float = 1e-6, atol: float = 1e-6) -> bool:
    """Tolerant stdin/stdout comparison: same lines, token-wise, floats within tolerance."""
    a, b = stripped_lines(got), stripped_lines(expected)
    if len(a) != len(b):
        return False
    for la, lb in zip(a, b):
        ta, tb = la.split(), lb.split()
        if len(ta) != len(tb):
            return False
        for x, y in zip(ta, tb):
            if x == y:
                continue
            fx, fy = _as_float(x), _as_float(y)
            if fx is None or fy is None or not _close(fx, fy, rtol, atol):
                return False
    return True


def value_equal_strict(got: Any, expected: Any) -> bool:
    """Upstream's call-based rule: a returned tuple becomes a list, then Python ``==``."""
    if isinstance(got, tuple):
        got = list(got)
    try:
        return bool(got == expected)
    except Exception:
        return False


def value_equal_float(got: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-6) -> bool:
    """Recursive comparison with float tolerance; tuples and lists are interchangeable."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return value_equal_strict(got, expected)
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return _close(float(got), float(expected), rtol, atol)
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(value_equal_float(x, y, rtol, atol) for x, y in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(value_equal_float(got[k], expected[k], rtol, atol) for k in got)
    return value_equal_strict(got, expected)


#: name -> (stdio comparator, functional comparator)
COMPARATORS: dict[str, tuple[Callable[[str, str], bool], Callable[[Any, Any], bool]]] = {
    "strict": (stdio_equal_strict, value_equal_strict),
    "float": (stdio_equal_float, value_equal_float),
}
