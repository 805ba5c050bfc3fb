"""MBPP+ prompt assertions are checked by an interpreter, never ``eval``-ed on the host."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from prmbench.tasks.assertion_expr import check_holds, parse_check
from prmbench.tasks.evalplus_tasks import MbppPlusTask, mbpp_public_examples, read_jsonl


def test_the_data_sets_assertions_hold_for_right_values() -> None:
    assert check_holds("set(_out) == set((4, 5))", [5, 4])
    assert not check_holds("set(_out) == set((4, 5))", [5, 3])
    assert check_holds("math.isclose(_out, 4188.790204786391, rel_tol=0.001)", 4188.8)
    assert not check_holds("math.isclose(_out, 4188.790204786391, rel_tol=0.001)", "4188.8")
    assert check_holds("_out == sys.getsizeof(('A', 1, 'B', 2, 'C', 3))", __import__("sys").getsizeof(("A", 1, "B", 2, "C", 3)))
    assert check_holds("not _out", False) and not check_holds("not _out", 1)
    assert check_holds("_out", [0]) and not check_holds("_out", [])
    assert check_holds("-1 < _out - 2 * 3 <= 0.5 and _out in {6, 7} or False", 6)
    assert check_holds("sorted(_out, reverse=True) == [3, 2, 1]", (1, 3, 2))


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true')",
    "sys.modules['os'].system('true')",
    "_out.__class__.__mro__",
    "open('/etc/passwd').read()",
    "(lambda: 1)()",
    "[x for x in _out]",
    "9 ** 9 ** 9",
    "'a' * 10 ** 10",
    "_out * 10 ** 12",
    "getattr(_out, 'x')",
    "math.__dict__",
    "sys.exit(0)",
    "f'{_out}'",
    "_out[0]",
    "_out if _out else _out",
    "(_out := 1)",
])
def test_anything_outside_the_language_is_refused(expr: str) -> None:
    assert parse_check(expr) is None
    assert check_holds(expr, 1) is False


def test_arithmetic_is_on_numbers_only() -> None:
    assert check_holds("_out + 1 == 3", 2)
    assert not check_holds("_out + 1 == 3", "2")  # no sequence concatenation / repetition
    assert not check_holds("_out * 3 == 'aaa'", "a")


def test_all_mbpp_plus_prompt_assertions_stay_checkable(shared_data_dir: Path) -> None:
    path = shared_data_dir / "mbpp_plus" / "MbppPlus-v0.2.0.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    checks = [ex["check"] for r in read_jsonl(path) for ex in mbpp_public_examples(r["prompt"], r["entry_point"])
              if "check" in ex]
    assert len(checks) == 22 and all(parse_check(c) is not None for c in checks)


def test_a_data_file_cannot_run_code_on_the_host(tmp_path: Path) -> None:
    """A prompt assertion that would write a file when evaluated: it is never evaluated."""
    marker = tmp_path / "pwned"
    evil = f"_ = sys.modules['builtins'].open({str(marker)!r}, 'w').write('x')"
    row = {"task_id": "Mbpp/9001", "entry_point": "f", "canonical_solution": "def f(x):\n    return x\n",
           "prompt": f'"""\nReturn x.\nassert f(1) == sys.modules["builtins"].open({str(marker)!r}, "w").write("x")\n"""\n',
           "base_input": [[1]], "plus_input": [], "atol": 0}
    data = tmp_path / "MbppPlus.jsonl.gz"
    with gzip.open(data, "wt") as fh:
        fh.write(json.dumps(row) + "\n")
    task = MbppPlusTask(data_file=str(data), workers=1)
    try:
        (problem,) = task.load()
        assert problem.metadata["public_examples"], "the assertion's call is still an example"
        assert task.public_pass_fraction(problem, "def f(x):\n    return 1\n") == 0.0
        task.vote_keys(problem, ["def f(x):\n    return 1\n", "def f(x):\n    return 2\n"])
    finally:
        task.close()
    assert not marker.exists(), "data from the prompt was evaluated on the host"
    assert parse_check(evil) is None
