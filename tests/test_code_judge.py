"""Tests of prmbench.code_judge: typed JSON, the evalplus-semantics comparator, the sandbox
driver and the wrong-answer cheats it must stop (always-equal objects, frame peeking)."""

from __future__ import annotations

import collections
import math

import pytest

from prmbench import code_judge as cj
from prmbench.code_judge import CallRecord, EvalplusComparator


# -- typed JSON --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    None, True, False, 0, 1, -5, 2 ** 63, -(2 ** 200), 1.5, -0.0, 1e300, "", "héllo\udcff", b"\x00\xff",
    bytearray(b"ab"), 1 + 2j, [1, [2, (3,)]], (), (1, "a", None), {1, 2}, frozenset({"x"}), set(),
    {"a": 1}, {1: "a", (1, 2): [3], None: {}, 2.5: frozenset()}, {"$tuple": [1]}, [{"$set": []}],
])
def test_typed_json_round_trips(value: object) -> None:
    back = cj.loads_typed(cj.dumps_typed(value))
    assert back == value and type(back) is type(value)
    if isinstance(value, (list, tuple)):
        assert [type(x) for x in back] == [type(x) for x in value]  # type: ignore[union-attr]


def test_typed_json_keeps_bool_int_float_apart_and_special_floats() -> None:
    encs = {cj.dumps_typed(v) for v in (True, 1, 1.0)}
    assert len(encs) == 3
    assert cj.dumps_typed((1,)) != cj.dumps_typed([1])
    assert cj.dumps_typed({1: 2}) != cj.dumps_typed({"1": 2})
    assert math.isnan(cj.loads_typed(cj.dumps_typed(float("nan"))))
    assert cj.loads_typed(cj.dumps_typed([float("inf"), float("-inf")])) == [math.inf, -math.inf]
    big = 7 ** 20000  # over Python's int-to-str digit limit
    assert cj.loads_typed(cj.dumps_typed(big)) == big
    assert cj.loads_typed(cj.dumps_typed(collections.Counter("aab"))) == {"a": 2, "b": 1}


def test_typed_json_rejects_non_builtin_values() -> None:
    class AlwaysEqual:
        def __eq__(self, other: object) -> bool:
            return True

    class MyInt(int):
        pass

    cyclic: list = []
    cyclic.append(cyclic)
    for bad in (AlwaysEqual(), MyInt(3), [1, AlwaysEqual()], {MyInt(1): 2}, cyclic, object(), print, range(3)):
        with pytest.raises(cj.UnsupportedValue):
            cj.encode_value(bad)
    with pytest.raises(cj.UnsupportedValue):
        cj.encode_value(_nest(cj.MAX_DEPTH + 5))
    for bad_json in ({"$eval": "1"}, {"a": 1, "b": 2}, {"$int": 5}, {"$tuple": "x"}, {"$float": "1.0"}):
        with pytest.raises(ValueError):
            cj.decode_value(bad_json)


def _nest(n: int) -> list:
    x: list = []
    for _ in range(n):
        x = [x]
    return x


# -- comparator (evalplus 0.3.1 semantics) -----------------------------------------------------
def _v(x: object) -> CallRecord:
    return CallRecord("value", x)


def test_exact_match_and_python_equality() -> None:
    c = EvalplusComparator("humaneval", "f", 0)
    assert c.matches(_v([1, 2]), [1, 2], [])
    assert c.matches(_v(3.0), 3, [])           # == semantics: 3.0 == 3
    assert c.matches(_v(True), 1, [])          # and True == 1, as in evalplus
    assert not c.matches(_v((1, 2)), [1, 2], [])
    assert not c.matches(_v("1"), 1, [])
    assert not c.matches(CallRecord("error", error="ValueError"), 1, [])
    assert not c.matches(CallRecord("timeout"), 1, [])
    assert not c.matches(CallRecord("unsupported"), 1, [])


def test_float_tolerance_promotion_is_sticky_within_a_run() -> None:
    c = EvalplusComparator("humaneval", "f", 0)
    assert not c.matches(_v([1, 2]), [1, 3], [])
    assert c.matches(_v(1.0 + 1e-7), 1.0, [])        # float expected: atol becomes 1e-6
    assert not c.matches(_v(1.0 + 1e-5), 1.0, [])
    assert c.matches(_v([1, 2 + 1e-9]), [1, 2], [])  # ints expected, but atol stuck at 1e-6
    assert not c.matches(_v([1.0]), (1.0,), [])      # same type required for the tolerance
    assert not c.matches(_v([1.0, 2.0]), [1.0], [])  # and the same length
    fresh = EvalplusComparator("humaneval", "f", 0)
    assert not fresh.matches(_v([1, 2 + 1e-9]), [1, 2], [])
    assert not fresh.matches(_v(float("nan")), float("nan"), [])
    wide = EvalplusComparator("humaneval", "f", 1e-4)
    assert wide.matches(_v(1.00005), 1.0, []) and not wide.matches(_v(1.0002), 1.0, [])


def test_special_oracles() -> None:
    fz = EvalplusComparator("humaneval", "find_zero", 1e-4)
    assert fz.matches(_v(1.0), 99.0, [[-1.0, 1.0]])   # poly(-1 + x) at x=1 is 0: the expected root is irrelevant
    assert not fz.matches(_v(2.0), 1.0, [[-1.0, 1.0]])
    assert not fz.matches(_v("1"), 1.0, [[-1.0, 1.0]])
    assert EvalplusComparator("mbpp", "similar_elements", 0).matches(_v((5, 4)), (4, 5), [])
    assert EvalplusComparator("mbpp", "are_equivalent", 0).matches(_v(False), True, [])
    assert EvalplusComparator("mbpp", "sum_div", 0).matches(_v(0), 7, [])
    nn = EvalplusComparator("mbpp", "check_str", 0)
    assert nn.matches(CallRecord("not_none", True), True, []) and not nn.matches(CallRecord("not_none", False), True, [])
    assert nn.matches(_v(False), False, []) and not nn.matches(_v(None), True, [])
    sa = EvalplusComparator("mbpp", "surface_Area", 0)
    assert sa.matches(_v(33), 33, [3, 4]) and not sa.matches(_v(34), 33, [3, 4])
    dd = EvalplusComparator("mbpp", "digit_distance_nums", 0)
    assert dd.matches(_v(7), 999, [123, 256]) and not dd.matches(_v(6), 999, [123, 256])


def test_time_limits_follow_evalplus_defaults() -> None:
    assert cj.DEFAULT_MIN_TIME_LIMIT == 1.0 and cj.DEFAULT_GT_TIME_LIMIT_FACTOR == 4.0
    assert cj.time_limits_for([0.001, 0.5]) == [1.0, 2.0]
    evalplus_config = pytest.importorskip("evalplus.config")
    assert evalplus_config.DEFAULT_MIN_TIME_LIMIT == cj.DEFAULT_MIN_TIME_LIMIT
    assert evalplus_config.DEFAULT_GT_TIME_LIMIT_FACTOR == cj.DEFAULT_GT_TIME_LIMIT_FACTOR


# -- the driver in the real sandbox ------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():  # type: ignore[no-untyped-def]
    from prmbench.sandbox import Sandbox

    sb = Sandbox(workers=2)
    yield sb
    sb.close()


def test_driver_reports_values_errors_timeouts_and_noise(sandbox) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys\n"
        "print('import noise')\n"
        "def f(x):\n"
        "    print('call noise'); sys.stderr.write('err noise')\n"
        "    if x == 'boom': raise KeyError(x)\n"
        "    if x == 'loop':\n"
        "        while True: pass\n"
        "    if x == 'obj': return object()\n"
        "    return (x, {x: [1.5, float('nan')]}, {1}, b'z', None, True, 10 ** 30)\n"
    )
    items = [("args", ["a"]), ("args", ["boom"]), ("args", ["obj"]), ("args", ["loop"]), ("expr", "f('b')[0]")]
    rep = cj.run_calls(sandbox, code, "f", items, [1.0, 1.0, 1.0, 0.3, 1.0], stop_on_error=False)
    kinds = [r.kind for r in rep.records]
    assert kinds == ["value", "error", "unsupported", "timeout", "value"], rep
    v = rep.records[0].value
    assert v[0] == "a" and type(v) is tuple and math.isnan(v[1]["a"][1]) and v[2:] == ({1}, b"z", None, True, 10 ** 30)
    assert rep.records[1].error == "KeyError" and rep.records[4].value == "b"
    assert rep.isolation == sandbox.isolation and rep.status == "ok"
    stop = cj.run_calls(sandbox, code, "f", items, [1.0] * 5)  # stop_on_error: the run ends at "boom"
    assert [r.kind for r in stop.records] == ["value", "error", "missing", "missing", "missing"]


def test_driver_load_errors_and_whole_run_limits(sandbox) -> None:  # type: ignore[no-untyped-def]
    rep = cj.run_calls(sandbox, "def f(:\n", "f", [("args", [1])], [1.0])
    assert rep.load_error == "SyntaxError"
    rep = cj.run_calls(sandbox, "def g(): pass\n", "f", [("args", [1])], [1.0])
    assert rep.load_error == "KeyError"
    rep = cj.run_calls(sandbox, "import sys\nsys.exit(0)\n", "f", [("args", [1])], [1.0])
    assert rep.load_error == "SystemExit"
    rep = cj.run_calls(sandbox, "while True: pass\n", "f", [("args", [1])], [0.2], wall_seconds=1.0)
    assert rep.status == "timeout" and rep.records[0].kind == "missing"
    verdict = cj.judge_run(rep, [1], [[1]], EvalplusComparator("humaneval", "f", 0))
    assert verdict.status == "timeout" and verdict.first_failure == 0


def test_big_outputs_are_compared_by_digest(sandbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cj, "BIG_OUTPUT_BYTES", 1000)
    rep = cj.run_calls(sandbox, "def f(n): return list(range(n))\n", "f", [("args", [10]), ("args", [5000])], [1.0, 1.0])
    assert [r.kind for r in rep.records] == ["value", "digest"]
    rep2 = cj.run_calls(sandbox, "def f(n): return [i for i in range(n)]\n", "f", [("args", [5000])], [1.0])
    rep3 = cj.run_calls(sandbox, "def f(n): return list(range(1, n + 1))\n", "f", [("args", [5000])], [1.0])
    comp = EvalplusComparator("humaneval", "f", 0)
    assert comp.matches(rep2.records[0], rep.records[1].value, [5000])
    assert not comp.matches(rep3.records[0], rep.records[1].value, [5000])
    assert not comp.matches(rep.records[0], rep.records[1].value, [5000])


def test_run_and_judge_first_failure_decides(sandbox) -> None:  # type: ignore[no-untyped-def]
    inputs = [[1], [2], [3]]
    expected = [2, 4, 6]
    times = [0.0, 0.0, 0.0]
    ok, iso = cj.run_and_judge(sandbox, "def f(x): return 2 * x\n", "f", inputs, expected, times, dataset="humaneval", atol=0)
    assert ok.status == "pass" and ok.passed == 3 and iso == sandbox.isolation
    wrong, _ = cj.run_and_judge(sandbox, "def f(x): return 2 * x if x < 2 else 0\n", "f", inputs, expected, times,
                                dataset="humaneval", atol=0)
    assert (wrong.status, wrong.first_failure, wrong.passed) == ("fail", 1, 1)
    err, _ = cj.run_and_judge(sandbox, "def f(x): return [2][x - 1]\n", "f", inputs, expected, times,
                              dataset="humaneval", atol=0)
    assert (err.status, err.first_failure) == ("error", 1)
    slow, _ = cj.run_and_judge(sandbox, "def f(x):\n    while x > 2: pass\n    return 2 * x\n", "f", inputs, expected,
                               times, dataset="humaneval", atol=0, min_time_limit=0.3)
    assert (slow.status, slow.first_failure) == ("timeout", 2)


# -- cheats ------------------------------------------------------------------------------------
ALWAYS_EQUAL = """
class Anything(list):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = None

class AnythingElse:
    def __eq__(self, other): return True

def f(x):
    return Anything() if x % 2 else AnythingElse()
"""

FRAME_PEEK = """
import gc, inspect, sys

def f(x):
    # Look for the expected outputs anywhere in the process: caller frames, their locals and
    # globals, every object the garbage collector knows. They are not there.
    for frame_info in inspect.stack():
        for scope in (frame_info.frame.f_locals, frame_info.frame.f_globals):
            for name in ("expected", "exp", "expected_output", "outputs"):
                if name in scope:
                    val = scope[name]
                    return val[0] if isinstance(val, list) and val else val
    for obj in gc.get_objects():
        if isinstance(obj, dict) and "expected" in obj:
            return obj["expected"]
    return -1
"""

FORGE_RECORDS = """
import os, json
def f(x):
    # Try to inject result lines for the driver: fd 1 is not the result channel.
    for fd in (1, 2):
        try:
            os.write(fd, (json.dumps({"i": 0, "v": 123456}) + "\\n").encode())
        except OSError:
            pass
    return 0
"""


@pytest.mark.parametrize("cheat", [ALWAYS_EQUAL, FRAME_PEEK, FORGE_RECORDS])
def test_cheats_fail(sandbox, cheat: str) -> None:  # type: ignore[no-untyped-def]
    inputs = [[1], [2], [3]]
    expected = [123456, [7, 8], 999]
    verdict, _ = cj.run_and_judge(sandbox, cheat, "f", inputs, expected, [0.0] * 3, dataset="humaneval", atol=0)
    assert verdict.status != "pass" and verdict.first_failure == 0, verdict


def test_driver_never_receives_expected_outputs(sandbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    real_run = sandbox.run

    def spy(program: str, stdin: str = "", limits=None, **kw):  # type: ignore[no-untyped-def]
        seen.append(program + stdin)
        return real_run(program, stdin, limits, **kw)

    monkeypatch.setattr(sandbox, "run", spy)
    cj.run_and_judge(sandbox, "def f(x): return x\n", "f", [[1]], ["SECRET-EXPECTED-VALUE"], [0.0],
                     dataset="humaneval", atol=0)
    assert seen and all("SECRET-EXPECTED-VALUE" not in s for s in seen)


def test_big_strings_use_digests_where_str_equality_is_plain(sandbox) -> None:  # type: ignore[no-untyped-def]
    code = "def f(n):\n    return 'ab' * n\n"
    rep = cj.run_calls(sandbox, code, "f", [("args", [10]), ("args", [100_000])], [1.0, 1.0],
                       big_str_output=cj.str_digest_threshold("humaneval", "f"))
    assert [r.kind for r in rep.records] == ["value", "digest"]
    assert cj.str_digest_threshold("mbpp", "similar_elements") is None
    ok, _ = cj.run_and_judge(sandbox, "def f(n):\n    return ''.join('ab' for _ in range(n))\n", "f", [[100_000]],
                             [rep.records[1].value], [0.0], dataset="humaneval", atol=0)
    bad, _ = cj.run_and_judge(sandbox, "def f(n):\n    return 'ab' * n + 'c'\n", "f", [[100_000]],
                              [rep.records[1].value], [0.0], dataset="humaneval", atol=0)
    assert ok.status == "pass" and bad.status == "fail"


def test_flat_sequence_fast_path_matches_the_general_encoding():
    """Flat sequences of plain scalars take a fast path; anything else falls back per element."""
    plain = [1, -2, 2.5, "x", None, True, False, 2 ** 63 - 1]
    assert cj.encode_value(plain) == plain
    assert cj.encode_value(tuple(plain)) == {"$tuple": plain}
    assert cj.encode_value([1, float("nan")]) == [1, {"$float": "nan"}]
    assert cj.encode_value([2 ** 63, 1.0]) == [{"$int": hex(2 ** 63)}, 1.0]
    assert cj.encode_value([float("-inf")]) == [{"$float": "-inf"}]
    assert cj.encode_value([1, (2,)]) == [1, {"$tuple": [2]}]
    for v in (plain, tuple(plain), [1, [2, (3,)]], {frozenset({1}): [1.5]}):
        back = cj.loads_typed(cj.dumps_typed(v))
        assert back == v and type(back) is type(v)


# -- canonical digests of big outputs ------------------------------------------------------------
CANON_VALUES = [
    None, 0, 1, True, False, 1.0, -0.0, 0.5, 2 ** 70, float(2 ** 70), float("inf"), -math.inf, 1e300,
    1 + 0j, 2.5 + 0j, 1 + 2j, "1", "", b"ab", bytearray(b"ab"), [1, 2], (1, 2), [1.0, 2.0], [True, 2],
    [[1], (1,)], {1, 2}, frozenset({2, 1}), {1.0, 2}, set(), {"a": 1, "b": [2]}, {"b": [2.0], "a": True},
    collections.OrderedDict([("b", [2]), ("a", 1)]), collections.Counter("aab"), {1: "x"}, {1.0: "x"},
    {(1, 2): {3}}, [[1, 2], [3, [4, (5, 6.0)]]],
    # flat numeric sequences (the IEEE-bytes form): -0.0, exactness of big ints, complex, sets
    [-0.0, 1], [0, 1], [0.0, True], (0, 1), {-0.0, 1.5}, frozenset({0, 1.5}), [2 ** 60], [float(2 ** 60)],
    [2 ** 53 + 1], [float(2 ** 53)], [2 ** 53], [1 + 0j, 2], [1 + 1j, 2], [math.inf, 1], [float("inf"), 1.0],
    [], (), set(), frozenset(), [None, "NaNa"],
]


def test_canon_digest_equal_exactly_when_python_says_equal() -> None:
    """Over every pair of a varied value set: equal digests <=> ``==`` (after typed-JSON
    decoding, as the supervisor compares)."""
    digests = [cj.canon_digest(v) for v in CANON_VALUES]
    decoded = [cj.loads_typed(cj.dumps_typed(v)) for v in CANON_VALUES]
    assert "NaNa" in str(CANON_VALUES[-1]) and digests[-1] is None  # strings with "NaN" skip the shortcut
    for (a, da), (b, db) in [(x, y) for x in zip(decoded, digests) for y in zip(decoded, digests)]:
        if da is None or db is None:
            continue
        assert (da == db) == bool(a == b), (a, b)
    d = cj.canon_digest
    assert d([-0.0, 1]) == d([0, True]) == d([0 + 0j, 1.0]) and d({-0.0, 1.5}) == d(frozenset({1.5, 0}))
    assert d([2 ** 53 + 1]) != d([float(2 ** 53)]) and d([1, 2]) != d((1, 2)) and d({"a": 1, "b": 2}) == d({"b": 2.0, "a": True})


def test_canon_digest_refuses_what_has_no_canonical_form() -> None:
    class Weird(list):
        pass

    cyclic: list = []
    cyclic.append(cyclic)
    for v in (float("nan"), [1.0, float("nan")], {float("nan"): 1}, Weird([1]), object(), cyclic,
              _nest(cj.MAX_DEPTH + 5), [7 ** 20000]):
        assert cj.canon_digest(v) is None


def test_judge_case_asks_for_digests_only_where_comparison_is_plain_equality() -> None:
    big = list(range(20_000))
    floats = [0.5] * 5000
    case = cj.JudgeCase.prepare("f", [[1], [2], [3], [4]], [big, [1], floats, big], [0.0] * 4, dataset="humaneval", atol=0)
    # input 0: big and plain ==; input 1: small; input 2 is a list of floats (tolerance from
    # here on: evalplus's atol promotion sticks), so input 3 is compared with tolerance too.
    assert case.canon_indices == (0,)
    assert cj.JudgeCase.prepare("f", [[1]], [big], [0.0], dataset="humaneval", atol=1e-6).canon_indices == ()
    assert cj.JudgeCase.prepare("find_zero", [[1]], [big], [0.0], dataset="humaneval", atol=0).canon_indices == ()
    assert cj.JudgeCase.prepare("similar_elements", [[1]], [big], [0.0], dataset="mbpp", atol=0).canon_indices == ()


def test_big_outputs_come_back_as_canonical_digests(sandbox) -> None:  # type: ignore[no-untyped-def]
    n = 20_000
    inputs = [[n], [3]]
    expected = [[float(i) if i % 3 else i for i in range(n)], [0, 1, 2]]
    case = cj.JudgeCase.prepare("f", inputs, expected, [0.0, 0.0], dataset="humaneval", atol=0)
    assert case.canon_indices == (0,)
    rep = cj.run_calls(sandbox, "def f(n): return list(range(n))\n", "f", [("args", a) for a in inputs], [1.0, 1.0],
                       canon=case.canon_indices)
    assert [r.kind for r in rep.records] == ["canon", "value"]
    ok, _ = cj.judge_case(sandbox, "def f(n): return list(range(n))\n", case)  # ints == integral floats
    off_by_one, _ = cj.judge_case(sandbox, "def f(n): return list(range(1, n + 1)) if n > 3 else [0, 1, 2]\n", case)
    as_tuple, _ = cj.judge_case(sandbox, "def f(n): return tuple(range(n)) if n > 3 else [0, 1, 2]\n", case)
    not_builtin, _ = cj.judge_case(sandbox, "import array\ndef f(n): return array.array('q', range(n))\n", case)
    assert ok.status == "pass", ok
    assert (off_by_one.status, off_by_one.first_failure) == ("fail", 0)
    assert (as_tuple.status, as_tuple.first_failure) == ("fail", 0)
    assert not_builtin.status == "fail"


def test_canon_records_count_only_where_asked(sandbox) -> None:  # type: ignore[no-untyped-def]
    forged = 'import os\ndef f(x):\n    os.write(3, b\'{"i":0,"canon":"00"}\\n\')\n    return x\n'
    rep = cj.run_calls(sandbox, forged, "f", [("args", [1])], [1.0])  # fd 3: the driver's result channel
    assert [r.kind for r in rep.records] == ["value"]
    asked = cj.run_calls(sandbox, forged, "f", [("args", [1])], [1.0], canon=[0])
    assert [(r.kind, r.value) for r in asked.records] == [("canon", "00")]  # ... and then judged: a wrong digest
    verdict = cj.judge_run(asked, [[1] * 10], [[1]], EvalplusComparator("humaneval", "f", 0), [cj.canon_digest([1] * 10)])
    assert verdict.status == "fail"


def test_encode_items_plain_json_shortcut_is_exact() -> None:
    for items in ([("args", [1, 2.0, "x", None, True, [1, [2]]])], [("args", [(1, 2)])], [("args", [{1: 2}])],
                  [("args", [{"a": [1]}])], [("args", [float("nan"), math.inf])], [("args", [{1, 2}, b"x"])],
                  [("args", [7 ** 20000])], [("expr", "f(1)")]):
        back = cj.decode_value(__import__("json").loads(cj.encode_items(items)))
        assert back == [[k, p] for k, p in items] or any(isinstance(x, float) and x != x for x in items[0][1])
        assert [type(x) for x in back[0][1]] == [type(x) for x in items[0][1]]
