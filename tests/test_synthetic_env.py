"""The synthetic environment: its policy passes the shared backend conformance suite; its parts behave as documented."""

from __future__ import annotations

import pytest
from policy_conformance import PolicyConformance

from prmbench.plugins import build_registry
from prmbench.testing.synthetic import DELIMITER, SyntheticPolicy, SyntheticPRM, SyntheticTask, count_tokens
from prmbench.types import GenRequest

TASK = SyntheticTask(n_problems=4, n_steps=6, p_step=0.7)


class TestSyntheticConformance(PolicyConformance):
    max_tokens = 24

    @pytest.fixture(scope="class")
    def policy(self):
        return SyntheticPolicy(step_tokens=6)

    @pytest.fixture(scope="class")
    def problems(self):
        return [(p.id, TASK.prompt(p)) for p in TASK.load()[:2]]

    def expected_prompt_tokens(self, policy, messages, prefix):
        return count_tokens("\n\n".join(m.content for m in messages) + "\n\n" + prefix)

    def expected_completion_tokens(self, policy, problem_id, request, i, gen):
        # words and delimiters of the text, plus the eos token when the solution ended
        return count_tokens(gen.text) + (gen.finish_reason == "eos")


def test_registered_through_the_entry_point():
    reg = build_registry(strict=True)
    assert any(p["name"] == "synthetic" and p["origin"] != "built-in" for p in reg.plugins)
    assert isinstance(reg.build("policy", "synthetic", {}), SyntheticPolicy)
    assert isinstance(reg.build("rm", "synthetic_prm", {"noise": 0.5}), SyntheticPRM)
    assert isinstance(reg.build("task", "synthetic", {"p_step": 0.9}), SyntheticTask)


def test_full_samples_are_correct_with_probability_p_to_the_l():
    task = SyntheticTask(n_problems=1, n_steps=3, p_step=0.7)
    problem = task.load()[0]
    req = GenRequest(messages=task.prompt(problem), n=2000, seed=5)
    gens = SyntheticPolicy().generate([req])[0]
    assert all(g.finish_reason == "eos" and len(task.split_steps(g.text)) == 3 for g in gens)
    rate = sum(task.grade(problem, g.text).correct for g in gens) / len(gens)
    assert abs(rate - 0.7 ** 3) < 0.035  # sd of the rate: 0.011


def test_stepwise_continuation_and_the_perfect_prm():
    problem = TASK.load()[0]
    policy, prm = SyntheticPolicy(), SyntheticPRM()
    first = policy.generate([GenRequest(messages=TASK.prompt(problem), n=8, seed=1, stop=(DELIMITER,))])[0]
    assert all(g.finish_reason == "stop" and g.stop_string == DELIMITER and DELIMITER not in g.text for g in first)
    good = next(g.text for g in first if g.text.endswith("[ok]"))
    bad = next(g.text for g in first if g.text.endswith("[slip]"))
    after_bad = policy.generate([GenRequest(messages=TASK.prompt(problem), prefix=bad + DELIMITER, n=5, seed=2)])[0]
    assert all("[ok]" not in g.text for g in after_bad)  # errors propagate
    outs = prm.score(TASK, problem, [[good], [bad], [good, bad], [bad, good]])
    assert [o.step_scores for o in outs] == [(1.0,), (0.0,), (1.0, 0.0), (0.0, 0.0)]
    noisy = SyntheticPRM(noise=1.0).score(TASK, problem, [[good, bad]])[0].step_scores
    assert noisy != (1.0, 0.0) and all(0 <= s < 1 for s in noisy)
