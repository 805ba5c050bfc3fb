"""MCTS tree statistics: children's initial visits count in their parents' N, and a rollout's value
is backed up from the child it was rolled out from.

The tree of a real search (synthetic environment, noisy PRM so values differ) is captured when
the search picks its answer and checked node by node against its own history: every non-root
node's N is its initial visit + its rollouts + its children's N, its value sum likewise.
"""

from __future__ import annotations

import pytest

from prmbench.cache import Cache
from prmbench.context import GenParams, ModelCalls, SearchContext
from prmbench.strategies.mcts import MCTS
from prmbench.testing.synthetic import SyntheticPolicy, SyntheticPRM, SyntheticTask
from prmbench.types import Budget


def search_tree(tmp_path, monkeypatch, leaf_eval: str, sims: int, problem_index: int = 0):
    """Run MCTS for `sims` simulations (unit nominal); (root node, result, rollout candidates)."""
    task = SyntheticTask(n_problems=8, p_step=0.7)
    problem = task.load()[problem_index]
    calls = ModelCalls(task, SyntheticPolicy(), Cache(tmp_path / f"c{problem_index}.sqlite"), GenParams(max_tokens=64), 0)
    rm = SyntheticPRM(noise=0.5, seed=3)
    strategy = MCTS(leaf_eval=leaf_eval, expansions=3)
    captured = {}
    original = MCTS._choose

    def capture(self, ctx, problem, root, finals):
        captured["root"], captured["finals"] = root, list(finals)
        return original(self, ctx, problem, root, finals)

    monkeypatch.setattr(MCTS, "_choose", capture)
    result = strategy.search(problem, SearchContext(calls, rm, problem, Budget(n=sims, unit="nominal")))
    return captured["root"], result, captured["finals"]


def nodes(root):
    stack, out = [root], []
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.children)
    return out


def own_value(node) -> float:
    """A child's initial value: its aggregated score, 0 for a truncated step."""
    return 0.0 if node.cand.finish_reason == "length" else float(node.cand.score or 0.0)


@pytest.mark.parametrize("leaf_eval", ["prm", "rollout"])
@pytest.mark.parametrize("problem_index", [0, 1, 2])
def test_visits_and_values_add_up(tmp_path, monkeypatch, leaf_eval, problem_index):
    root, result, finals = search_tree(tmp_path, monkeypatch, leaf_eval, sims=6, problem_index=problem_index)
    tree = nodes(root)
    assert len(tree) > 4  # several expansions happened
    rolled = 0
    for node in tree:
        own = 0 if node is root else 1
        rollouts = getattr(node, "rollouts", 0)
        rolled += rollouts
        assert node.visits == own + rollouts + sum(ch.visits for ch in node.children), node.cand
    assert root.visits == sum(ch.visits for ch in root.children) > 1
    if leaf_eval == "rollout":
        assert rolled >= 1  # the rollouts were credited to tree nodes
    else:  # no rollouts: a node's value sum is its own initial value plus its children's
        for node in tree:
            own = 0.0 if node is root else own_value(node)
            assert node.value_sum == pytest.approx(own + sum(ch.value_sum for ch in node.children))


def test_rollout_value_is_backed_up_from_its_child(tmp_path, monkeypatch):
    """After one simulation with a rollout: the rolled-out child holds two visits (its PRM value and
    the rollout's value), the root holds every child's initial visit plus the rollout."""
    root, result, finals = search_tree(tmp_path, monkeypatch, "rollout", sims=1)
    kids = root.children
    assert len(kids) == 3
    # the rollout is the last candidate drawn: a complete solution continuing one child's steps
    rollout = finals[-1]
    [child] = [ch for ch in kids if ch.cand.steps == rollout.steps[: len(ch.cand.steps)] and ch.visits == 2]
    roll_value = 0.0 if rollout.finish_reason == "length" else rollout.score
    assert child.value_sum == pytest.approx(own_value(child) + roll_value)
    assert all(ch.visits == 1 for ch in kids if ch is not child)
    assert root.visits == len(kids) + 1
    assert root.value_sum == pytest.approx(sum(ch.value_sum for ch in kids))
