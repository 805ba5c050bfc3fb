"""Evaluate a data set's assertion expression on a value without ``eval`` (MBPP+ prompts).

MBPP+ prompts show a test such as ``assert math.isclose(volume_sphere(10), 4188.79, rel_tol=0.001)``.
For public examples the call is run in the sandbox and the rest of the assertion (the call
replaced by ``_out``) is checked here, on the host, against the returned builtin value. The
expression is data, so it is never given to ``eval``: `parse_check` accepts only a small
expression language and `check_holds` interprets it node by node.

The language: literals (numbers, strings, bytes, ``True``/``False``/``None``, and tuple, list,
set and dict displays of those), the name ``_out``, ``and``/``or``/``not``, comparisons, unary
``-``/``+``, and ``+ - * / // %`` on numbers only (no ``**``, no sequence repetition, so no
expression can allocate more than its own size), and calls of `FUNCTIONS` (``set``, ``len``,
``sorted``, ..., ``math.isclose`` with ``rel_tol``/``abs_tol``, ``math.fabs``,
``sys.getsizeof``). Anything else makes `parse_check` return None: the example then counts as
shown without a checkable value.
"""

from __future__ import annotations

import ast
import math
import operator
import sys
from typing import Any, Callable

#: Callable names and the functions they stand for.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "set": set, "frozenset": frozenset, "len": len, "abs": abs, "sorted": sorted, "list": list, "tuple": tuple,
    "round": round, "min": min, "max": max, "sum": sum, "all": all, "any": any, "int": int, "float": float,
    "str": str, "bool": bool,
    "math.isclose": math.isclose, "math.fabs": math.fabs, "sys.getsizeof": sys.getsizeof,
}
#: Keyword arguments a call may pass, per function (all others take positional arguments only).
KEYWORDS: dict[str, frozenset[str]] = {"math.isclose": frozenset({"rel_tol", "abs_tol"}),
                                       "sorted": frozenset({"reverse"}), "round": frozenset({"ndigits"})}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_NUMBERS = (int, float, complex)
_CONSTANTS = (int, float, complex, str, bytes, bool, type(None))


class UnsupportedExpression(ValueError):
    """The expression uses something outside the language of this module."""


def _func_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    raise UnsupportedExpression("only plain function names can be called")


def _validate(node: ast.AST) -> None:
    """Raise UnsupportedExpression unless every node of `node` is in the language."""
    if isinstance(node, ast.Constant):
        if type(node.value) not in _CONSTANTS:
            raise UnsupportedExpression(f"constant of type {type(node.value).__name__}")
    elif isinstance(node, ast.Name):
        if node.id != "_out":
            raise UnsupportedExpression(f"name {node.id!r}")
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                raise UnsupportedExpression("starred element")
            _validate(elt)
    elif isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise UnsupportedExpression("dict unpacking")
            _validate(k)
            _validate(v)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _validate(v)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            raise UnsupportedExpression(type(node.op).__name__)
        _validate(node.operand)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise UnsupportedExpression(type(node.op).__name__)
        _validate(node.left)
        _validate(node.right)
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _CMPOPS for op in node.ops):
            raise UnsupportedExpression("comparison operator")
        _validate(node.left)
        for c in node.comparators:
            _validate(c)
    elif isinstance(node, ast.Call):
        name = _func_name(node.func)
        if name not in FUNCTIONS:
            raise UnsupportedExpression(f"call of {name}")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise UnsupportedExpression("starred argument")
            _validate(a)
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in KEYWORDS.get(name, ()):
                raise UnsupportedExpression(f"keyword {kw.arg!r} of {name}")
            _validate(kw.value)
    else:
        raise UnsupportedExpression(type(node).__name__)


def parse_check(source: str) -> ast.expr | None:
    """The validated expression tree of `source`, or None when it is outside the language."""
    try:
        tree = ast.parse(source, mode="eval").body
        _validate(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return tree


def _eval(node: ast.expr, out: Any) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return out
    if isinstance(node, ast.Tuple):
        return tuple(_eval(e, out) for e in node.elts)
    if isinstance(node, ast.List):
        return [_eval(e, out) for e in node.elts]
    if isinstance(node, ast.Set):
        return {_eval(e, out) for e in node.elts}
    if isinstance(node, ast.Dict):
        return {_eval(k, out): _eval(v, out) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for v in node.values:
            result = _eval(v, out)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        x = _eval(node.operand, out)
        if isinstance(node.op, ast.Not):
            return not x
        if not isinstance(x, _NUMBERS):
            raise TypeError("unary minus/plus on a non-number")
        return -x if isinstance(node.op, ast.USub) else +x
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, out), _eval(node.right, out)
        if not (isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS)):
            raise TypeError("arithmetic on a non-number")  # no sequence repetition or concatenation
        return _BINOPS[type(node.op)](a, b)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, out)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, out)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        fn = FUNCTIONS[_func_name(node.func)]
        args = [_eval(a, out) for a in node.args]
        kwargs = {kw.arg: _eval(kw.value, out) for kw in node.keywords if kw.arg is not None}
        return fn(*args, **kwargs)
    raise UnsupportedExpression(type(node).__name__)


def check_holds(source: str, out: Any) -> bool:
    """Whether the assertion expression `source` holds with ``_out`` bound to `out` (a builtin
    value, decoded from typed JSON). False when it does not, raises, or is outside the language."""
    tree = parse_check(source)
    if tree is None:
        return False
    try:
        return bool(_eval(tree, out))
    except Exception:
        return False
