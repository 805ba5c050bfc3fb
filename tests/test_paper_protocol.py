"""The paper's protocol: `--config paper_protocol`, unbiased pass@k and `leaderboard --format paper`."""

from __future__ import annotations

from itertools import combinations

import pytest

from prmbench.cli import main
from prmbench.paper_table import paper_rows
from prmbench.passk import pass_at_k
from prmbench.results import load_run


@pytest.mark.parametrize("n, c, k", [(8, 0, 8), (8, 1, 8), (16, 3, 8), (10, 4, 1), (7, 2, 3), (5, 5, 2)])
def test_pass_at_k_is_the_chance_that_k_drawn_samples_hold_a_correct_one(n, c, k):
    pool = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(pool[i] for i in s) for s in subsets) / len(subsets))


def test_pass_at_k_refuses_a_pool_smaller_than_k():
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 8)


def test_paper_protocol_run_and_table(tmp_path, capsys):
    out = tmp_path / "run"
    # the protocol (best_of_n + majority_vote at N = 8) with a 16-sample pool for the unbiased pass@8
    assert main(["run", "--config", "paper_protocol", "--tasks", "synthetic", "--policy", "synthetic",
                 "--rm", "synthetic_prm,oracle", "--budget", "8,16", "--limit", "20", "--output", str(out)]) == 0
    run = load_run(out)
    assert {c.strategy for c in run.cells} == {"best_of_n", "majority_vote"}
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "paper"]) == 0
    text = capsys.readouterr().out
    for method in ("none", "majority vote", "synthetic_prm", "pass@8 (oracle)"):
        assert f"| {method} " in text
    assert "oracle |" not in text.replace("pass@8 (oracle) |", "")  # the oracle is no PRM row

    by = {(c.strategy, c.rm, c.budget): c.records for c in run.cells}
    acc = lambda recs: sum(r["correct"] for r in recs) / len(recs)
    tasks, rows = paper_rows([run], 8)
    got = {r["method"]: r["synthetic"] for r in rows}
    pool = by[("best_of_n", "oracle", 16)]
    assert all(len(r["info"]["candidate_scores"]) == 16 for r in pool)
    # brute force over the 16-sample pools: every 8-subset, and every single sample
    exact8 = []
    for r in pool:
        ok = [s >= 1.0 for s in r["info"]["candidate_scores"]]
        subsets = list(combinations(range(16), 8))
        exact8.append(sum(any(ok[i] for i in s) for s in subsets) / len(subsets))
    assert got["pass@8 (oracle)"] == pytest.approx(sum(exact8) / len(exact8))
    assert got["none"] == pytest.approx(sum(sum(s >= 1.0 for s in r["info"]["candidate_scores"]) / 16 for r in pool) / 20)
    assert got["majority vote"] == acc(by[("majority_vote", "none", 8)])
    assert got["synthetic_prm"] == acc(by[("best_of_n", "synthetic_prm", 8)])
    assert got["none"] < got["pass@8 (oracle)"]
    assert got["synthetic_prm"] <= acc(by[("best_of_n", "oracle", 8)])  # on the same 8 samples, the oracle bounds a PRM
    assert f"{100 * got['pass@8 (oracle)']:.1f}" in text


def test_paper_protocol_alone_sets_n_8(tmp_path, capsys):
    """The config's own `budget: 8` (a YAML number) is the run's budget."""
    out = tmp_path / "run"
    assert main(["run", "--config", "paper_protocol", "--tasks", "synthetic", "--policy", "synthetic",
                 "--rm", "synthetic_prm,oracle", "--limit", "3", "--output", str(out)]) == 0
    assert {c.budget for c in load_run(out).cells} == {8}
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "paper"]) == 0
    assert "pass@8 (oracle)" in capsys.readouterr().out


def test_paper_table_without_records_is_a_clear_error(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path), "--format", "paper"]) == 2
