"""Compute matching that holds at every budget: a main-job-like matrix in the synthetic environment.

The main job (scripts/main.sh) runs every strategy under a PRM and the oracle at budgets 2 and 4
with --max-tokens 48. Here the same matrix runs through the real runner on the synthetic task
(steps of 8 tokens, 5% of steps rambling to the token limit), at N = 2, 4, 8, 16 and under the
explicit caps. Checked for every record: a search exceeds its allowance by at most one sample
plus its score (the record's `info.max_unit_flops`, itself bounded by the largest sample the
synthetic environment can produce); and for every cell: mean spend within 15% of the mean
allowance at N >= 2 and within 5% at N >= 8 (searches that ended before the budget did are
left out of the lower side: they had nothing left to do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner

POOL = ("best_of_n", "majority_vote", "weighted_majority")
STEPWISE = ("beam_search", "mcts", "dvts", "mcts_rollout")
MAX_TOKENS = 48
POLICY_PARAMS, PRM_PARAMS = 10_000_000, 1_000_000  # the synthetic components' defaults
QUESTION, STEP, STEPS = 5, 8, 4  # synthetic tokens: question header, one step, steps per solution


def one_sample_bound(rm: str) -> float:
    """The most one sample plus its score can cost in the synthetic environment: a prompt of
    question + delimiter + the STEPS-1 earlier steps with their delimiters, up to MAX_TOKENS new
    tokens; the PRM reads the question, the earlier steps and the new text (the oracle is free)."""
    policy = 2.0 * POLICY_PARAMS * (QUESTION + 1 + (STEPS - 1) * (STEP + 1) + MAX_TOKENS)
    prm = 2.0 * PRM_PARAMS * (QUESTION + (STEPS - 1) * STEP + MAX_TOKENS)
    return policy + (prm if rm == "synthetic_prm" else 0.0)


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


def run(tmp: Path, registry, unit: str, budgets: tuple[int, ...], limit: int,
        policy_args: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm", "oracle"), strategies=(*POOL, *STEPWISE),
                   budgets=budgets, policy="synthetic", limit=limit, seed=0, budget_unit=unit,
                   max_tokens=MAX_TOKENS, policy_args={"ramble": 0.05, **(policy_args or {})})
    out = Runner(spec, registry, tmp / unit, log=lambda m: None).run()
    return {c.id: c.records for c in load_run(out).cells}


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


@pytest.mark.slow
def test_every_cell_matches_its_allowance_at_every_budget(tmp_path, registry):
    cells = run(tmp_path, registry, "n", (2, 4, 8, 16), limit=30)
    table: list[str] = []
    for cell, recs in cells.items():
        assert len(recs) == 30, cell
        strategy, n = recs[0]["strategy"], recs[0]["budget"]
        for r in recs:
            spent, allowed = r["spend"]["flops"], r["allowance_flops"]
            if strategy in POOL:
                assert spent == pytest.approx(allowed), cell  # best-of-N's own compute, exactly
                continue
            unit = r["info"]["max_unit_flops"]
            assert 0 < unit <= one_sample_bound(r["rm"]), (cell, unit)  # a unit is one sample + its score
            assert spent - allowed <= unit * (1 + 1e-9), (cell, r["problem_id"], spent / allowed)
        ratio = mean([r["spend"]["flops"] for r in recs]) / mean([r["allowance_flops"] for r in recs])
        stopped = [r for r in recs if r["info"].get("stopped_by_budget", True)]
        low = mean([r["spend"]["flops"] for r in stopped]) / mean([r["allowance_flops"] for r in stopped])
        table.append(f"{cell}: {ratio:.3f}")
        tol = 0.05 if n >= 8 else 0.15
        assert ratio <= 1 + tol and low >= 1 - tol, (cell, ratio, low)
    print("\nmean spend / allowance\n" + "\n".join(table))


@pytest.mark.slow
@pytest.mark.parametrize("unit, budgets", [("tokens", (40, 300)), ("flops", (int(2e9), int(2e10))),
                                           ("seconds", (1, 5))])
def test_explicit_caps_overshoot_by_at_most_one_sample(tmp_path, registry, unit, budgets):
    spt = 0.01  # simulated model-call seconds per generated token (seconds cap)
    cells = run(tmp_path, registry, unit, budgets, limit=12, policy_args={"seconds_per_token": spt})
    checked = 0
    for cell, recs in cells.items():
        for r in recs:
            s, cap = r["spend"], r["budget"]
            pool = r["strategy"] in POOL
            if unit == "tokens":
                # step searches shorten their last sample to the tokens left: never over the cap
                assert s["generated_tokens"] <= cap + (MAX_TOKENS - 1 if pool else 0), cell
            elif unit == "flops":
                unit_flops = one_sample_bound(r["rm"]) if pool else r["info"]["max_unit_flops"]
                assert unit_flops <= one_sample_bound(r["rm"]), cell
                assert s["flops"] - cap <= unit_flops * (1 + 1e-9), (cell, s["flops"] / cap)
            else:  # one sample's simulated seconds plus the measured (tiny) scoring time
                assert s["seconds"] - cap <= spt * MAX_TOKENS + 0.5, (cell, s["seconds"])
            checked += 1
    assert checked == len(cells) * 12
