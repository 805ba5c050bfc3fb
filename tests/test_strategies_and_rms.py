"""Selection rules of best-of-N and majority vote; the oracle and random reward models."""

from __future__ import annotations

import pytest

from prmbench.aggregate import aggregate
from prmbench.errors import ConfigError
from prmbench.reward_models.oracle import OracleRM
from prmbench.reward_models.random_rm import RandomRM
from prmbench.strategies.selection import argmax_score, cluster_answers, finished
from prmbench.tasks.math500 import Math500Task
from prmbench.types import Candidate, Problem


@pytest.fixture(scope="module")
def task(shared_data_dir):
    return Math500Task(data_file=str(shared_data_dir / "math500" / "test.jsonl"))


def cand(answer: str | None, score: float | None = None, finish: str = "eos") -> Candidate:
    text = f"Work.\n\nSo the answer is $\\boxed{{{answer}}}$." if answer is not None else "I give up."
    return Candidate(steps=tuple(text.split("\n\n")), text=text, finish_reason=finish,  # type: ignore[arg-type]
                     completion_tokens=5, score=score, answer=answer)


def test_aggregations():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "last") == 0.8 and aggregate(s, "min") == 0.5
    assert aggregate(s, "prod") == pytest.approx(0.36) and aggregate(s, "mean") == pytest.approx(2.2 / 3)
    assert aggregate([], "min") == 0.0
    with pytest.raises(ConfigError, match="Did you mean 'prod'"):
        aggregate(s, "prd")


def test_argmax_prefers_finished_and_breaks_ties_by_index():
    cs = [cand("1", 0.2), cand("2", 0.9, finish="length"), cand("3", 0.7), cand("4", 0.7)]
    assert finished(cs) == [0, 2, 3]
    assert argmax_score(cs, finished(cs)) == 2  # the truncated 0.9 is not a finished solution
    all_cut = [cand("1", 0.2, "length"), cand("2", 0.3, "length")]
    assert argmax_score(all_cut, finished(all_cut)) == 1


def test_clusters_use_task_equivalence(task):
    cs = [cand("\\frac{1}{2}"), cand("7"), cand("0.5"), cand(None), cand("\\dfrac12"), cand("7.0"), cand("8")]
    clusters = cluster_answers(task, Problem(id="p", task="math500", question="q"), cs, finished(cs))
    assert clusters == [[0, 2, 4], [1, 5], [6]]


def test_random_rm_is_seeded_and_prefix_consistent(task):
    p = Problem(id="x", task="math500", question="q")
    rm = RandomRM(seed=3)
    a, b = rm.score(task, p, [["s1", "s2", "s3"], ["s1", "s2", "t3"]])
    assert a.step_scores[:2] == b.step_scores[:2] and a.step_scores[2] != b.step_scores[2]
    assert rm.score(task, p, [["s1", "s2", "s3"]])[0] == a  # same candidate, same scores, any batch
    assert RandomRM(seed=4).score(task, p, [["s1"]])[0].step_scores != a.step_scores[:1]
    assert all(0 <= s < 1 for s in a.step_scores)


def test_random_rm_is_uniform(task):
    p = Problem(id="y", task="math500", question="q")
    scores = [o.step_scores[0] for o in RandomRM().score(task, p, [[f"step {i}"] for i in range(4000)])]
    mean = sum(scores) / len(scores)
    assert abs(mean - 0.5) < 0.02  # 4000 uniforms: sd of the mean 0.0046
    assert abs(sum(s < 0.25 for s in scores) / len(scores) - 0.25) < 0.03


def test_oracle_uses_the_grader(task):
    problem = next(p for p in task.load() if p.id == "test/precalculus/807.json")
    sol = problem.metadata["solution"]
    right = task.split_steps(sol)
    wrong = task.split_steps(sol.replace("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\boxed{(3, \\pi)}"))
    outs = OracleRM().score(task, problem, [right, wrong, []])
    assert [o.step_scores for o in outs] == [(1.0,), (0.0,), (0.0,)]


def test_steps_round_trip_keeps_code_meaning(task):
    code = "def f(x):\n    y = x + 1\n\n    if y > 2:\n        return y\n\n\n    return 0\n"
    steps = task.split_steps(code)
    assert steps == ["def f(x):\n    y = x + 1", "    if y > 2:\n        return y", "    return 0"]
    namespace: dict = {}
    exec(task.join_steps(steps), namespace)  # indentation survives the split
    assert namespace["f"](5) == 6 and namespace["f"](0) == 0
