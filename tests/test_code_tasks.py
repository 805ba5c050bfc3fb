"""Tests of the code tasks: CodeTask base rules, HumanEval+/HumanEval/MBPP+ loading and grading."""

from __future__ import annotations

from typing import Any, Sequence

import pytest

from prmbench.tasks.code_base import CodeTask, is_bare_body, normalise_code
from prmbench.types import Grade, Problem


class _Toy(CodeTask):
    name = "toy"

    def load(self) -> list[Problem]:
        return [Problem("t/0", "toy", "def f(x): ...", metadata={"entry_point": "f"})]

    def prompt_prefix(self, problem: Problem) -> str | None:
        return "def f(x):\n    \"\"\"Double x.\"\"\"\n"

    def grade(self, problem: Problem, completion: str) -> Grade:
        return Grade(False)

    def public_outcomes(self, problem: Problem, codes: Sequence[str]) -> list[list[tuple[bool, Any]]]:
        return [[(("2 *" in c), c.count("2"))] for c in codes]


def test_extract_code_prefers_last_python_block() -> None:
    text = "x\n```python\na = 1\n```\nthen\n```py\nb = 2\n```\n```text\nno\n```"
    assert CodeTask.extract_code(text) == "b = 2\n"
    assert CodeTask.extract_code("```\nc = 3\n```") == "c = 3\n"
    assert CodeTask.extract_code("d = 4") == "d = 4"
    assert CodeTask.extract_code("```python\ne = 5\n") == "e = 5\n"  # unclosed final fence
    assert CodeTask.extract_code("  \n") is None


def test_bare_body_gets_prompt_prepended() -> None:
    t = _Toy()
    p = t.load()[0]
    assert t.full_program(p, "    return 2 * x\n") == "def f(x):\n    \"\"\"Double x.\"\"\"\n    return 2 * x\n"
    full = "def f(x):\n    return x + x\n"
    assert t.full_program(p, full) == full
    assert not is_bare_body("import math\n    return 1", "f")
    assert is_bare_body("\n    y = x\n    return y", "f")


def test_steps_and_same_answer() -> None:
    t = _Toy()
    assert t.split_steps("a\n\nb\n  \nc") == ["a", "b", "c"]
    assert _Toy(step_split="none").split_steps("a\n\nb") == ["a\n\nb"]
    assert t.same_answer("def f():\n  # hi\n  return 1  \n\n", "def f():\n  return 1")
    assert not t.same_answer("def f():\n  return 1", "def f():\n  return 2")
    assert normalise_code("a  \n\n# c\nb") == "a\nb"


def test_vote_keys_and_public_fraction_use_public_outcomes() -> None:
    t = _Toy()
    p = t.load()[0]
    keys = t.vote_keys(p, ["return 2 * x", "return 2 * x", "return x", ""])
    assert keys[0] == keys[1] != keys[2] and keys[3] not in keys[:3]
    assert t.public_pass_fraction(p, "return 2 * x") == 1.0
    assert t.public_pass_fraction(p, None) == 0.0
