"""Tests of prmbench.math_grading: boxed extraction, answer keys, equivalence, time bounds."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from prmbench import math_grading as mg
from prmbench.math_grading import EquivResult, answer_key, check_equiv, is_equiv, last_boxed

# A tower of exponents: sympy tries to evaluate it and never finishes.
PATHOLOGICAL = r"10^{10^{10}}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test computes its verdicts (no memoised answers from another test)."""
    with mg._cache_lock:
        mg._cache.clear()
    yield


def _in_thread(fn, *args):
    """Run fn(*args) in a non-main thread; return (result, seconds)."""
    box: dict[str, object] = {}

    def target() -> None:
        t = time.monotonic()
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # pragma: no cover - surfaced by the assert below
            box["error"] = e
        box["seconds"] = time.monotonic() - t

    th = threading.Thread(target=target)
    th.start()
    th.join(60)
    assert not th.is_alive(), "check did not return"
    assert "error" not in box, box.get("error")
    return box["value"], box["seconds"]


# -- last_boxed ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (r"so $\boxed{5}$.", "5"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),                          # nested braces
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"first \boxed{3}, then \boxed{4}.", "4"),                        # the last one wins
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),                                   # escaped braces do not count
    (r"$\boxed 5$.", "5"),                                              # brace-less form
    ("the answer is \\boxed 42.\nDone", "42"),
    (r"\fbox{7}", "7"),
    (r"\boxed {x+1}", "x+1"),
    (r"\boxed{ 12 }", "12"),
    (r"\boxed{a}}", "a"),                                               # stray closing brace after
    (r"\boxed{\text{(C)}}", r"\text{(C)}"),
    (r"\boxed{3", None),                                                # unbalanced (truncated)
    (r"\boxed{1} and then \boxed{2", None),                             # last one malformed
    (r"\boxed{}", None),                                                # empty
    ("no box at all", None),
    ("", None),
    (r"\boxedx{3}", None),                                              # not the \boxed macro
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


# -- answer_key ------------------------------------------------------------------------------

def test_answer_key_removes_formatting_only():
    assert answer_key(r"\left( 3, \dfrac{\pi}{2} \right).") == answer_key(r"(3,\frac{\pi}{2})")
    assert answer_key(r"\text{Monday}") == answer_key("Monday")
    assert answer_key(r"30^\circ") == answer_key("30") == answer_key(r"30^{\circ}")
    assert answer_key(r"\$18.90") == "18.90"
    assert answer_key(r"$\frac{1}{2}$") == r"\frac{1}{2}"
    assert answer_key(r"\tfrac12") == r"\frac12"
    assert answer_key(r"\pi r") != answer_key(r"\pir")
    assert answer_key("0.5") != answer_key(r"\frac{1}{2}")                # needs is_equiv
    assert answer_key("[2,5)") != answer_key("[2,5]")


# -- equivalence: hand-checked cases ---------------------------------------------------------
# (pred, gold, expected). What math-verify 0.9 does, checked by hand; notes on the surprising ones.
CASES = [
    # fractions and decimals
    ("0.5", r"\frac{1}{2}", True),
    (r"\frac{1}{2}", "0.5", True),
    ("0.33", "1/3", False),                   # rounded decimals do not match a fraction ...
    ("1/3", "0.33", False),
    ("0.333333", r"\frac13", True),           # ... unless equal to 6 decimal places
    (r"\dfrac{1}{2}", r"\frac{1}{2}", True),
    (r"\tfrac{3}{4}", "0.75", True),
    (r"\sqrt{12}", r"2\sqrt{3}", True),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", True),
    ("2x+1", "1+2x", True),
    ("2x+1", "2x-1", False),
    # tuples / points
    (r"(3, \frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)", True),
    (r"(3, \pi)", r"\left( 3, \frac{\pi}{2} \right)", False),
    (r"(\frac{\pi}{2}, 3)", r"\left( 3, \frac{\pi}{2} \right)", False),  # tuples are ordered
    # intervals
    ("[2,5)", "[2,5]", False),
    (r"(-\infty, 3]", r"(-\infty,3]", True),
    (r"\left(-\infty, 3\right]", r"(-\infty,3]", True),
    (r"(-\infty, 3)", r"(-\infty,3]", False),
    (r"x \le 3", r"(-\infty,3]", False),      # math-verify compares a relation with a set only when the prediction is the set
    # text answers
    ("Monday", r"\text{Monday}", True),
    (r"\text{Monday}", r"\text{Monday}", True),
    (r"\text{Tuesday}", r"\text{Monday}", False),
    ("even", r"\text{even}", True),
    ("odd", r"\text{even}", False),
    ("C", r"\text{(C)}", True),               # math-verify drops the parentheses of a lettered choice
    ("(C)", r"\text{(C)}", True),
    (r"\text{C}", r"\text{(C)}", True),
    ("D", r"\text{(C)}", False),
    # sets / lists of roots: unordered
    ("3, 1", "1,3", True),
    (r"\{3, 1\}", "1, 3", True),
    ("-2, 5", "5, -2", True),
    ("1, 3", "1,3,5", False),
    # degrees
    (r"30^\circ", "30", True),
    ("30", r"30^\circ", True),
    (r"30^{\circ}", "30", True),
    ("31", r"30^\circ", False),
    (r"\frac{270}{7}", r"\frac{270}7\text{ degrees}", True),   # units in \text are dropped
    # percentages: math-verify accepts both X% = X and X% = X/100
    (r"50\%", "50", True),
    ("0.5", r"50\%", True),
    (r"25\%", "50", False),
    # money, units, thousands separators
    (r"\$18.90", "18.90", True),
    ("18.9", r"\$18.90", True),
    ("32348", r"\$32,\!348", True),
    ("5.4", r"5.4 \text{ cents}", True),
    # equations: the value on the right counts
    ("x=5", "5", True),
    ("5", "x=5", True),
    # matrices
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}", True),
    (r"\begin{pmatrix} 2 \\ 1 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}", False),
    # obviously wrong, malformed or empty
    ("10", "11", False),
    ("7", r"\frac{1}{2}", False),
    (r"\frac{1}{2", r"\frac{1}{2}", False),   # unbalanced braces
    ("{", "1", False),
    ("", "1", False),
    ("   ", "1", False),
]


@pytest.mark.parametrize("pred, gold, expected", CASES)
def test_equivalence_cases(pred, gold, expected):
    assert is_equiv(pred, gold, timeout=5.0) is expected
    res = check_equiv(pred, gold, timeout=5.0)
    assert res.equal is expected
    assert res.reason == ("equivalent" if expected else "not_equivalent")


def test_same_verdicts_off_the_main_thread():
    """The worker-process path agrees with the in-process path."""
    sample = CASES[::4]
    here = [check_equiv(p, g, 5.0) for p, g, _ in sample]
    with mg._cache_lock:
        mg._cache.clear()
    there, _ = _in_thread(lambda: [check_equiv(p, g, 5.0) for p, g, _ in sample])
    assert there == here
    assert [r.equal for r in here] == [e for _, _, e in sample]


def test_determinism_and_memo():
    pairs = [(p, g) for p, g, _ in CASES]
    first = [check_equiv(p, g, 5.0) for p, g in pairs]
    again = [check_equiv(p, g, 5.0) for p, g in pairs]        # memoised
    with mg._cache_lock:
        mg._cache.clear()
    fresh = [check_equiv(p, g, 5.0) for p, g in pairs]        # recomputed
    assert first == again == fresh


def test_bad_timeout_is_rejected():
    for bad in (0, -1, None, float("nan"), float("inf"), True):
        with pytest.raises(ValueError):
            check_equiv("1", "2", bad)  # type: ignore[arg-type]


# -- time bounds and failures ----------------------------------------------------------------

def test_pathological_check_is_bounded_in_main_thread():
    t = time.monotonic()
    res = check_equiv(PATHOLOGICAL, "1", timeout=1.0)
    took = time.monotonic() - t
    assert res == EquivResult(False, "timeout")
    assert took < 2.0
    t = time.monotonic()
    assert check_equiv(PATHOLOGICAL, "1", timeout=1.0).reason == "timeout"   # memoised: instant
    assert time.monotonic() - t < 0.1
    assert check_equiv("0.5", r"\frac{1}{2}", 1.0).equal                    # still works afterwards


def test_pathological_check_is_bounded_in_a_thread():
    res, _ = _in_thread(check_equiv, "0.25", r"\frac{1}{4}", 5.0)         # start a worker
    assert res.equal
    res, took = _in_thread(check_equiv, PATHOLOGICAL + "+1", "1", 1.0)
    assert res == EquivResult(False, "timeout")
    assert took < 1.0 + 2.5
    res, _ = _in_thread(check_equiv, "0.125", r"\frac{1}{8}", 5.0)          # the pool still works
    assert res.equal


def test_many_threads_at_once():
    out: dict[int, EquivResult] = {}

    def work(i: int) -> None:
        out[i] = check_equiv(f"{i}.5", rf"\frac{{{2 * i + 1}}}{{2}}", 5.0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert all(out[i].equal for i in range(4))


def test_unresponsive_worker_is_killed():
    """A worker stuck beyond timeout + grace (simulated with SIGSTOP) is killed: a timeout."""
    w = mg._acquire_worker()
    os.kill(w.proc.pid, signal.SIGSTOP)
    t = time.monotonic()
    res = w.check("1", "2", 0.3)
    assert res.reason == "timeout"
    assert time.monotonic() - t < 0.3 + mg._HARD_GRACE_MIN + 1.0
    assert not w.alive()


def test_existing_sigalrm_timer_is_preserved():
    fired: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert check_equiv(r"\frac{2}{4}", "0.5", 2.0).equal
        assert signal.getsignal(signal.SIGALRM) is not None and fired == []
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < left <= 30.0
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        time.sleep(0.3)
        assert fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_math_verify_exceptions_become_error(monkeypatch):
    def boom(pred: str, gold: str) -> bool:
        raise RuntimeError("sympy exploded")

    monkeypatch.setattr(mg, "_compare", boom)
    res = check_equiv("17", "18", 1.0)
    assert res.equal is False and res.reason == "error" and "sympy exploded" in res.detail
    assert is_equiv("19", "20", 1.0) is False
    assert is_equiv("21", "21", 1.0) is True    # equal keys never reach math-verify


def test_common_case_is_fast():
    pairs = [(f"{i}.5", rf"\frac{{{2 * i + 1}}}{{2}}") for i in range(40)]
    check_equiv("0.75", r"\frac34", 5.0)  # warm up
    t = time.monotonic()
    assert all(is_equiv(p, g, 5.0) for p, g in pairs)
    assert (time.monotonic() - t) / len(pairs) < 0.05


def test_worker_failure_is_an_error_and_not_memoised(monkeypatch):
    class Broken:
        def __init__(self) -> None:
            raise OSError("cannot fork")

    with mg._pool_lock:
        idle = list(mg._pool_idle)
        mg._pool_idle.clear()
    try:
        monkeypatch.setattr(mg, "_Worker", Broken)
        res, _ = _in_thread(check_equiv, "0.2", r"\frac{1}{5}", 5.0)
        assert res.equal is False and res.reason == "error" and "cannot fork" in res.detail
    finally:
        monkeypatch.undo()
        with mg._pool_lock:
            mg._pool_idle.extend(idle)
    res, _ = _in_thread(check_equiv, "0.2", r"\frac{1}{5}", 5.0)
    assert res.equal is True
