"""The lab's built-in domains: generation, step splitting, math grading and sandboxed code grading."""

from __future__ import annotations

import pytest

from prmbench.errors import ConfigError
from prmbench.lab.problems import generate
from prmbench.tasks.lab_code import LabCodeTask
from prmbench.tasks.lab_math import LabMathTask
from sandbox_support import BWRAP_SKIP


def test_generation_is_deterministic_and_splits_differ():
    a = [generate(3, "test", i, 2, 5) for i in range(50)]
    assert a == [generate(3, "test", i, 2, 5) for i in range(50)]
    assert a != [generate(3, "train", i, 2, 5) for i in range(50)]
    assert a != [generate(4, "test", i, 2, 5) for i in range(50)]
    assert {len(p.ops) for p in a} == {2, 3, 4, 5}
    for p in a:  # every running total has two digits, the answer is the last total
        assert all(10 <= t <= 99 for t in p.totals) and p.answer == p.start + sum(p.ops)


def test_difficulty_knob_sets_the_number_of_steps():
    task = LabMathTask(n_problems=20, min_steps=6, max_steps=6)
    for p in task.load():
        assert p.metadata["n_steps"] == 6
        assert len(task.split_steps(task.reference_solution(p))) == 6
    code = LabCodeTask(n_problems=5, min_steps=3, max_steps=3)
    for p in code.load():
        steps = code.split_steps(code.reference_solution(p))
        assert len(steps) == 5 and steps[0].startswith("n = ") and steps[-1] == "print(n)"


def test_math_steps_state_one_result_each_and_grade():
    task = LabMathTask(n_problems=10)
    for p in task.load():
        steps = task.split_steps(task.reference_solution(p))
        assert all("=" in s for s in steps) and steps[-1].endswith(f"\\boxed{{{p.reference}}}")
        assert task.grade(p, task.reference_solution(p)).correct
        wrong = task.join_steps(steps[:-1] + [steps[-1].replace(f"{{{p.reference}}}", f"{{{int(p.reference) + 1}}}")])
        g = task.grade(p, wrong)
        assert not g.correct and g.details["extracted"] == str(int(p.reference) + 1)
        assert task.grade(p, "no answer here").details["reason"] == "no_boxed_answer"
        assert p.public_view().reference is None


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="min_steps"):
        LabMathTask(min_steps=5, max_steps=2)
    with pytest.raises(ConfigError, match="split"):
        LabCodeTask(split="dev")
    with pytest.raises(ConfigError, match="n_problems"):
        LabMathTask(n_problems=0)


@pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))
def test_code_is_graded_in_the_sandbox():
    task = LabCodeTask(n_problems=3)
    try:
        probs = task.load()
        p = probs[0]
        ref = task.reference_solution(p)
        g = task.grade(p, ref)
        assert g.correct and g.details["isolation"] in ("bwrap", "unshare+uid", "rlimits")
        assert not task.grade(p, ref.replace("print(n)", "print(n + 1)")).correct
        assert task.grade(p, "n = 1\n\nprint(undefined)").details["reason"] == "runtime_error"
        # A program cannot find the answer anywhere: the reference never enters the sandbox.
        snoop = "import os, sys\n\nprint(sum(1 for _ in os.walk('/tmp')), len(sys.argv))"
        assert not task.grade(p, snoop).correct
        keys = task.vote_keys(p, [ref, "print(0)", ref])
        assert keys[0] == keys[2] != keys[1]
    finally:
        task.close()


@pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))
def test_teacher_slips_make_wrong_answers_at_about_the_rate():
    """The fallible teacher (PolicySpec.teacher_error): seeded, a slip changes the graded answer, and
    the share of wrong solutions is about 1 - mean((1 - rate)^k)."""
    from prmbench.lab.trainer import PolicySpec, make_task, teacher_solution

    for domain in ("lab_math", "lab_code"):
        spec = PolicySpec(task=domain, teacher_error=0.2, min_steps=2, max_steps=5)
        task = make_task(spec, "train", 300)
        try:
            probs = task.load()
            clean = PolicySpec(task=domain, teacher_error=0.0, min_steps=2, max_steps=5)
            assert all(teacher_solution(clean, task, i) == task.reference_solution(p) for i, p in enumerate(probs[:20]))
            sols = [teacher_solution(spec, task, i) for i in range(len(probs))]
            assert sols == [teacher_solution(spec, task, i) for i in range(len(probs))]  # deterministic
            wrong = [not task.grade(p, s).correct for p, s in zip(probs, sols)]
            expected = 1 - sum(0.8 ** len(task.arith(i).ops) for i in range(len(probs))) / len(probs)
            assert abs(sum(wrong) / len(wrong) - expected) < 0.08, (domain, sum(wrong) / len(wrong), expected)
            assert not any(w for p, s, w in zip(probs, sols, wrong) if s == task.reference_solution(p))
        finally:
            task.close()
