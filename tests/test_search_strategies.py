"""Search strategies and budgets in the synthetic environment, where the right answers are known.

The synthetic task (prmbench.testing.synthetic) has solutions of L steps, each correct with
probability p when the earlier ones were, so a full sample is correct with probability p**L; its
PRM is perfect (step k scores 1.0 iff steps 1..k are correct). Everything runs through the real
runner, registry (the synthetic plugin's entry point) and meter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prmbench.budgets import definition, make_budget, measure_allowance
from prmbench.cache import Cache
from prmbench.context import GenParams, ModelCalls, SearchContext
from prmbench.errors import ConfigError
from prmbench.leaderboard import leaderboard_table
from prmbench.metrics import wilson_interval
from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner
from prmbench.testing.synthetic import SyntheticPolicy, SyntheticPRM, SyntheticTask
from prmbench.types import Message

STEPWISE = ("beam_search", "mcts", "mcts_rollout", "dvts")
ALL = ("best_of_n", "majority_vote", "weighted_majority", *STEPWISE)


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


def run(tmp: Path, registry, name: str, *, strategies=ALL, rms=("synthetic_prm",), budgets=(4,), unit="n",
        limit=100, task_args=None, policy_args=None, strategy_args=None, seed=0) -> dict[str, list[dict[str, Any]]]:
    """Run the synthetic matrix; records by cell id."""
    spec = RunSpec(tasks=("synthetic",), rms=tuple(rms), strategies=tuple(strategies), budgets=tuple(budgets),
                   policy="synthetic", limit=limit, seed=seed, budget_unit=unit, task_args=task_args or {},
                   policy_args=policy_args or {}, strategy_args=strategy_args or {})
    out = Runner(spec, registry, tmp / name, log=lambda m: None).run()
    return {c.id: c.records for c in load_run(out).cells}


def accuracy_ci(records: list[dict[str, Any]]) -> tuple[float, float]:
    return wilson_interval(sum(r["correct"] for r in records), len(records))


def expected(task_args: dict[str, Any], f) -> float:
    """Mean of f(p_solve) over the task's problems."""
    problems = SyntheticTask(**task_args).load()
    return sum(f(p.metadata["p_solve"]) for p in problems) / len(problems)


@pytest.mark.slow
def test_best_of_n_with_the_oracle_is_pass_at_n(tmp_path, registry):
    args = {"n_problems": 300, "p_step": 0.8}
    for n in (1, 4):
        recs = run(tmp_path, registry, f"bon{n}", strategies=("best_of_n",), rms=("oracle",), budgets=(n,),
                   limit=None, task_args=args)[f"synthetic--oracle--best_of_n--n{n}"]
        low, high = accuracy_ci(recs)
        assert low <= expected(args, lambda q: 1 - (1 - q) ** n) <= high


@pytest.mark.slow
def test_random_rm_selects_at_chance(tmp_path, registry):
    args = {"n_problems": 300}
    recs = run(tmp_path, registry, "rand", strategies=("best_of_n", "beam_search"), rms=("random",), budgets=(8,),
               unit="nominal", limit=None, task_args=args)
    chance = expected(args, lambda q: q)  # a uniformly chosen sample is correct with probability p_solve
    for strategy in ("best_of_n", "beam_search"):
        low, high = accuracy_ci(recs[f"synthetic--random--{strategy}--nominal8"])
        assert low <= chance <= high, strategy
    # the same samples under the perfect PRM are far above chance: selection is what differs
    perfect = run(tmp_path, registry, "perf", strategies=("best_of_n",), budgets=(8,), unit="nominal",
                  limit=None, task_args=args)["synthetic--synthetic_prm--best_of_n--nominal8"]
    assert accuracy_ci(perfect)[0] > chance + 0.2


@pytest.mark.slow
def test_beam_of_one_with_a_perfect_prm_is_greedy_correct(tmp_path, registry):
    args = {"n_problems": 200, "p_step": 0.6, "n_steps": 4}
    recs = run(tmp_path, registry, "greedy", strategies=("beam_search_greedy",), budgets=(4,), unit="nominal",
               limit=None, task_args=args)["synthetic--synthetic_prm--beam_search_greedy--nominal4"]
    for r in recs:
        rounds = r["info"]["rounds"]
        assert len(rounds) == 4
        # correct exactly when every round offered a correct next step (which the PRM then took)
        assert r["correct"] == all(rd["best"] == 1.0 for rd in rounds), r["problem_id"]
    low, high = accuracy_ci(recs)
    assert low <= (1 - 0.4 ** 4) ** 4 <= high  # every step: at least one of M=4 samples is correct


@pytest.mark.slow
def test_mcts_with_a_perfect_prm_finds_a_correct_path(tmp_path, registry):
    args = {"n_problems": 100, "p_step": 0.6}
    task = SyntheticTask(**args)
    problems = {p.id: p for p in task.load()}
    recs = run(tmp_path, registry, "mcts", strategies=("mcts",), budgets=(64,), limit=None,
               task_args=args)["synthetic--synthetic_prm--mcts--n64"]
    best_of_1 = expected(args, lambda q: q)
    for r in recs:
        found = any(task.grade(problems[r["problem_id"]], f"\\boxed{{{a}}}").correct
                    for a in r["info"]["candidate_answers"] if a is not None)
        assert r["correct"] == found  # whenever the tree holds a correct complete path, it is the answer
    assert sum(r["correct"] for r in recs) / len(recs) >= 0.9 > best_of_1 + 0.5


@pytest.mark.slow
@pytest.mark.parametrize("unit, budgets", [("n", (2, 16)), ("tokens", (60, 400)), ("flops", (int(3e9), int(2e10)))])
def test_spend_stays_within_allowance_plus_one_sample(tmp_path, registry, unit, budgets):
    recs = run(tmp_path, registry, unit, rms=("synthetic_prm", "random"), budgets=budgets, unit=unit, limit=25,
               policy_args={"ramble": 0.05})
    # the documented bound: one sample of (question + longest prefix + max_tokens) policy tokens
    # plus scoring it (question + earlier steps + the new text) by the RM
    q, steps, step_tokens, max_tokens = 5, 4, 8, 512
    unit_bound = 2 * 1e7 * (q + 1 + steps * (step_tokens + 1) + max_tokens) + 2 * 1e6 * (q + steps * step_tokens + max_tokens)
    checked = 0
    for cell, rows in recs.items():
        assert len(rows) == 25, cell
        for r in rows:
            spent = r["spend"]["flops"]
            if unit == "tokens":
                cap, used = r["budget"], r["spend"]["generated_tokens"]
                assert used < cap + max_tokens, cell
                continue
            cap = r["allowance_flops"]
            if unit == "n" and r["strategy"] in ("best_of_n", "majority_vote", "weighted_majority"):
                assert spent == pytest.approx(cap), cell  # best-of-N spends exactly its allowance
            over = spent - cap
            if over > 0:
                # stepwise searches report their largest unit; a pool strategy's unit is one sample + score
                assert over <= r["info"].get("max_unit_flops", unit_bound) <= unit_bound, (cell, over)
                checked += 1
    assert unit == "tokens" or checked > 0  # the bound was exercised, not vacuous


def test_same_seed_same_records_other_seed_differs(tmp_path, registry):
    def strip(recs):
        # wall times (the search's, and the RM's measured share) are the only non-deterministic fields
        return {cell: [{**r, "info": {k: v for k, v in r["info"].items() if k != "wall_seconds"},
                        "spend": {k: v for k, v in r["spend"].items() if k != "seconds"}} for r in rows]
                for cell, rows in recs.items()}

    a = strip(run(tmp_path, registry, "a", budgets=(8,), limit=20))
    b = strip(run(tmp_path, registry, "b", budgets=(8,), limit=20))
    c = strip(run(tmp_path, registry, "c", budgets=(8,), limit=20, seed=1))
    assert a == b
    assert a != c


@pytest.mark.slow
def test_truncated_steps_are_never_finished_solutions(tmp_path, registry):
    recs = run(tmp_path, registry, "ramble", strategies=("best_of_n", *STEPWISE), budgets=(16,), limit=40,
               policy_args={"ramble": 0.3, "step_tokens": 8}, task_args={"p_step": 1.0})
    seen_cut = 0
    for cell, rows in recs.items():
        for r in rows:
            # p_step = 1: every step is correct, so only a truncated (rambling) path can be wrong
            finished = [a for a in r["info"]["candidate_answers"] if a is not None]
            if r["info"]["finish_reason"] == "length":
                seen_cut += 1
                assert not r["correct"] and not finished, cell
            else:
                assert r["correct"], cell
    assert seen_cut > 0


def test_stepwise_expansion_marks_length_as_truncated():
    task = SyntheticTask(n_problems=3, p_step=1.0)
    problem = task.load()[0]
    calls = ModelCalls(task, SyntheticPolicy(ramble=1.0), Cache(None), GenParams(max_tokens=12), run_seed=0)
    ctx = SearchContext(calls, SyntheticPRM(), problem, make_budget("nominal", 4, None))
    from prmbench.strategies.stepwise import Expander, is_live

    kids = Expander(ctx, max_depth=8).expand(None, 3)
    assert kids and all(k.finish_reason == "length" and not is_live(k) for k in kids)
    assert all(k.completion_tokens == 12 for k in kids)


def test_nominal_records_best_of_n_allowance_and_leaderboard_columns(tmp_path, registry):
    run(tmp_path, registry, "nom", strategies=("best_of_n", "beam_search"), budgets=(4,), unit="nominal", limit=10)
    result = load_run(tmp_path / "nom")
    assert result.run["budget_unit"] == "nominal"
    assert result.run["budget_definition"] == definition("nominal")
    assert result.run["hardware"].get("cpu")
    df = leaderboard_table([result]).set_index("strategy")
    assert df.loc["beam_search", "budget_flops"] == pytest.approx(df.loc["best_of_n", "budget_flops"])
    assert df.loc["best_of_n", "mean_spend_flops"] == pytest.approx(df.loc["best_of_n", "budget_flops"])
    # nominal beam search (N // M = 1 beam of 4) re-reads its prefixes: it spends more than best-of-4
    assert df.loc["beam_search", "mean_spend_flops"] > df.loc["beam_search", "budget_flops"]
    assert set(df["budget_unit"]) == {"nominal"}


def test_allowance_is_best_of_n_compute():
    task = SyntheticTask(n_problems=2)
    problem = task.load()[1]
    calls = ModelCalls(task, SyntheticPolicy(num_parameters=100), Cache(None), GenParams(), run_seed=0)
    rm = SyntheticPRM(num_parameters=10)
    spend = measure_allowance(calls, rm, problem, 3)
    gens = calls.generate([calls.request(problem, n=3)], [problem.id])[0]
    outs = calls.score(rm, problem, [task.split_steps(g.text) for g in gens])
    assert spend.policy_flops == 2 * 100 * sum(g.prompt_tokens + g.completion_tokens for g in gens)
    assert spend.rm_flops == 2 * 10 * sum(o.tokens for o in outs) > 0
    assert measure_allowance(calls, None, problem, 3).rm_flops == 0


def test_seconds_cap_stops_the_search(tmp_path, registry):
    recs = run(tmp_path, registry, "sec", strategies=("best_of_n", "mcts"), budgets=(1,), unit="seconds", limit=10,
               policy_args={"seconds_per_token": 0.01})
    # the largest unit is one full sample (4 steps of 9 tokens) or one expansion (4 next steps of 9
    # tokens): 36 tokens = 0.36 s; the RM's seconds are its measured (tiny) wall time
    unit_seconds, rm_slack = 36 * 0.01, 0.05
    for rows in recs.values():
        for r in rows:
            assert 1.0 <= r["spend"]["seconds"] < 1.0 + unit_seconds + rm_slack
            assert r["budget_unit"] == "seconds" and r["allowance_flops"] is None


def test_stepwise_strategies_refuse_a_replay_policy(tmp_path, registry):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"problem_id": "synthetic/0", "completions": ["Step 1: x [ok]"]}\n')
    spec = RunSpec(tasks=("synthetic",), rms=("random",), strategies=("best_of_n", "mcts"), budgets=(1,),
                   policy=f"replay:{pool}", budget_unit="nominal")
    with pytest.raises(ConfigError, match="mcts generates step by step.*serves only whole stored solutions"):
        Runner(spec, registry, tmp_path / "out", log=lambda m: None).run()


def test_bad_budget_unit_and_strategy_args(registry, tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'tokens'"):
        RunSpec(tasks=("synthetic",), rms=("random",), strategies=("mcts",), budgets=(1,), policy="synthetic",
                budget_unit="tokns").validate()
    with pytest.raises(ConfigError, match="leaf_eval must be one of prm, rollout"):
        registry.build("strategy", "mcts", {"leaf_eval": "sim"})
    with pytest.raises(ConfigError, match="expansions must be a positive integer"):
        registry.build("strategy", "beam_search", {"expansions": 0})


def test_synthetic_policy_needs_synthetic_problems():
    from prmbench.errors import DataError
    from prmbench.types import GenRequest

    with pytest.raises(DataError, match="--tasks synthetic"):
        SyntheticPolicy().generate([GenRequest(messages=(Message("user", "2+2?"),))])


@pytest.mark.slow
def test_math500_all_strategies_at_matched_spend_with_a_tiny_model(tmp_path, tiny_model_dir, shared_data_dir, capsys):
    """The CLI end to end: real MATH-500 problems, a real (tiny, random) Qwen2 policy, every strategy."""
    import pandas as pd

    from prmbench.cli import main

    out = tmp_path / "run"
    strategies = "best_of_n,majority_vote,weighted_majority,beam_search,mcts,dvts"
    argv = ["run", "--tasks", "math500", "--limit", "3", "--policy", f"hf:{tiny_model_dir}", "--rm", "random",
            "--strategy", strategies, "--budget", "2,4", "--max-tokens", "16", "--output", str(out),
            "--data-file", f"math500={shared_data_dir / 'math500' / 'test.jsonl'}"]
    assert main(argv) == 0
    board, plot = tmp_path / "board.csv", tmp_path / "acc.png"
    assert main(["leaderboard", str(out), "--format", "csv", "--output", str(board), "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 10_000
    df = pd.read_csv(board)
    assert set(df["strategy"]) == set(strategies.split(",")) and len(df) == 12
    assert (df["n"] == 3).all() and (df["budget_unit"] == "n").all()
    for budget, rows in df.groupby("budget"):
        # one allowance per budget (the random RM is free): every strategy is matched to the same compute
        pool = rows[rows["strategy"] == "best_of_n"]
        assert rows["budget_flops"].nunique() == 1 and float(pool["mean_spend_flops"].iloc[0]) == pytest.approx(
            float(pool["budget_flops"].iloc[0]))
    for cell in load_run(out).cells:
        for r in cell.records:
            over = r["spend"]["flops"] - r["allowance_flops"]
            assert over <= r["info"].get("max_unit_flops", 0.0) + 1e-6 * r["allowance_flops"], cell.id


def test_cli_budget_unit_flag(tmp_path, capsys):
    from prmbench.cli import main
    from prmbench.runner import parse_budgets

    base = ["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "random", "--strategy", "mcts",
            "--limit", "2"]
    assert main([*base, "--budget", "2", "--budget-unit", "tokns", "--output", str(tmp_path / "x")]) == 2
    assert "unknown --budget-unit 'tokns'. Did you mean 'tokens'?" in capsys.readouterr().err
    assert main([*base, "--budget", "2e2", "--budget-unit", "tokens", "--output", str(tmp_path / "t")]) == 0
    cells = load_run(tmp_path / "t").cells
    assert [c.id for c in cells] == ["synthetic--random--mcts--tokens200"]
    assert all(r["budget_unit"] == "tokens" and r["budget"] == 200 for r in cells[0].records)
    assert parse_budgets("1,2e12") == (1, 2_000_000_000_000)
    assert main([*base, "--budget", "1.5", "--output", str(tmp_path / "y")]) == 2
    assert "budgets are positive whole numbers" in capsys.readouterr().err


def test_weighted_majority_picks_the_heaviest_answer_cluster(tmp_path, registry):
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=("weighted_majority", "majority_vote"),
                   budgets=(8,), policy="synthetic", limit=30, rm_args={"noise": 1.0}, task_args={"p_step": 0.5})
    out = Runner(spec, registry, tmp_path / "wm", log=lambda m: None).run()
    cells = {c.strategy: c.records for c in load_run(out).cells}
    differs = 0
    for r, mv in zip(cells["weighted_majority"], cells["majority_vote"]):
        weights: dict[str, float] = {}
        for a, s in zip(r["info"]["candidate_answers"], r["info"]["candidate_scores"]):
            weights[a] = weights.get(a, 0.0) + s  # dicts keep first-seen order: max() keeps the first of ties
        best = max(weights, key=lambda a: weights[a])
        assert r["answer"] == best
        assert r["info"]["chosen_score"] == max(s for a, s in zip(r["info"]["candidate_answers"],
                                                                    r["info"]["candidate_scores"]) if a == best)
        differs += r["answer"] != mv["answer"]
    assert differs > 0  # the weights matter: not plain majority vote


@pytest.mark.parametrize("final", ["vote", "visits"])
def test_mcts_final_rules(tmp_path, registry, final):
    from collections import Counter

    recs = run(tmp_path, registry, final, strategies=("mcts",), rms=("random",), budgets=(32,), limit=15,
               strategy_args={"final": final, "leaf_eval": "rollout"}, task_args={"p_step": 0.6})
    rows = recs["synthetic--random--mcts--n32"]
    assert all(r["info"]["final"] == final for r in rows)
    for r in rows:
        answers = [a for a in r["info"]["candidate_answers"] if a is not None]
        assert answers and r["answer"] in answers and r["info"]["finish_reason"] == "eos"
        if final == "vote":
            counts = Counter(answers)
            assert counts[r["answer"]] == max(counts.values())


def test_cached_searches_are_charged_and_prefixes_do_not_collide():
    class Counting(SyntheticPolicy):
        served = 0

        def generate(self, requests, problem_ids=None):
            Counting.served += sum(r.n for r in requests)
            return super().generate(requests, problem_ids)

    from prmbench.strategies.mcts import MCTS

    task = SyntheticTask(n_problems=1, p_step=0.7)
    problem = task.load()[0]
    calls = ModelCalls(task, Counting(), Cache(None), GenParams(), run_seed=0)
    rm = SyntheticPRM()

    def search():
        allowance = measure_allowance(calls, rm, problem, 16)
        ctx = SearchContext(calls, rm, problem, make_budget("n", 16, allowance))
        return MCTS().search(problem, ctx), ctx.spend

    first, spend1 = search()
    served = Counting.served
    second, spend2 = search()
    assert Counting.served == served  # all served from the cache the second time ...
    assert spend2 == spend1 and spend1.policy_calls > 16  # ... and charged as when generated
    assert second.candidates == first.candidates
    # same seed and sample index, different prefixes: separate cache entries, different continuations
    a, b = (calls.request(problem, prefix=p, start=5, stop=("\n\n",)) for p in ("", "Step 1: x [slip]\n\n"))
    ga, gb = calls.generate([a, b], [problem.id] * 2)
    assert ga[0].text.startswith("Step 1:") and gb[0].text.startswith("Step 2:")


def test_an_empty_continuation_ending_in_eos_completes_its_parent():
    task = SyntheticTask(n_problems=1, n_steps=2, p_step=1.0)
    problem = task.load()[0]
    calls = ModelCalls(task, SyntheticPolicy(), Cache(None), GenParams(), run_seed=0)
    ctx = SearchContext(calls, SyntheticPRM(), problem, make_budget("nominal", 4, None))
    from prmbench.strategies.stepwise import Expander

    exp = Expander(ctx, max_depth=8)
    (first,) = exp.expand(None, 1)
    (done,) = exp.expand(first, 1)
    assert done.finish_reason == "eos" and len(done.steps) == 2 and done.answer == problem.reference
    (again,) = exp.expand(done, 1)  # the policy has nothing to add: it emits eos at once
    assert again.steps == done.steps and again.finish_reason == "eos"
    assert again.completion_tokens == done.completion_tokens + 1  # the eos token is charged


@pytest.mark.slow
def test_stepwise_search_with_a_real_prm_family(tmp_path, tiny_model_dir, tiny_rm_dirs, shared_data_dir):
    """Beam search, MCTS and DVTS scored by a (tiny, random) Qwen2.5-Math-PRM-architecture
    checkpoint: partial solutions go through the real adapter, its FLOPs count in allowance
    and spend, and the overshoot bound holds."""
    from prmbench.cli import main

    out = tmp_path / "run"
    rm = f"qwen_prm:{tiny_rm_dirs['qwen_prm']}"
    argv = ["run", "--tasks", "math500", "--limit", "2", "--policy", f"hf:{tiny_model_dir}", "--rm", rm,
            "--strategy", "best_of_n,beam_search,mcts,dvts", "--budget", "4", "--max-tokens", "16",
            "--output", str(out), "--data-file", f"math500={shared_data_dir / 'math500' / 'test.jsonl'}"]
    assert main(argv) == 0
    cells = {c.strategy: c for c in load_run(out).cells}
    assert set(cells) == {"best_of_n", "beam_search", "mcts", "dvts"}
    bon = {r["problem_id"]: r for r in cells["best_of_n"].records}
    for strategy, cell in cells.items():
        for r in cell.records:
            assert r["spend"]["rm_flops"] > 0 and r["spend"]["rm_tokens"] > 0, strategy
            assert r["allowance_flops"] == pytest.approx(bon[r["problem_id"]]["allowance_flops"])  # same allowance
            assert r["spend"]["flops"] - r["allowance_flops"] <= r["info"].get("max_unit_flops", 0.0) + 1e-6
