"""compare_runs: paired matching (on the budget unit too), McNemar's exact test, bootstrap CI,
refusals of runs with other sampling settings, seed or task configuration, and rendering."""

from __future__ import annotations

import numpy as np
import pytest
from run_fixtures import FakeCell, outcomes, write_run

from prmbench.compare import compare_runs, mcnemar_exact_p, paired_bootstrap_ci, render_comparison
from prmbench.errors import ConfigError, DataError
from prmbench.results import load_run

N = 100


def _run(path, correct, *, budget=4, tasks=None, ids=None, extra_cells=(), config=None, unit="n"):
    cells = [FakeCell("math500", "oracle", "best_of_n", budget, correct, problem_ids=ids, budget_unit=unit),
             *extra_cells]
    return load_run(write_run(path, cells, tasks=tasks, config=config))


def test_mcnemar_known_values():
    assert mcnemar_exact_p(10, 2) == pytest.approx(0.0386, abs=5e-5)
    assert mcnemar_exact_p(2, 10) == mcnemar_exact_p(10, 2)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(1, 0) == 1.0
    assert mcnemar_exact_p(40, 0) == pytest.approx(2 * 0.5 ** 40)
    assert 0 < mcnemar_exact_p(3000, 2000) < 1e-40  # large counts stay exact, no overflow


def test_identical_runs(tmp_path):
    correct = outcomes(N, 60)
    cmp = compare_runs(_run(tmp_path / "a", correct), _run(tmp_path / "b", correct))
    assert not cmp.regressed and len(cmp.cells) == 1
    c = cmp.cells[0]
    assert c.p_value == 1.0 and c.delta == 0.0 and c.b == 0 and c.c == 0
    assert c.base_accuracy == c.new_accuracy == pytest.approx(0.6)
    assert c.ci_low == 0.0 and c.ci_high == 0.0
    assert c.n_shared == N and c.n_only_base == 0 and c.n_only_new == 0
    assert "no regression" in render_comparison(cmp)


def test_clear_drop_regresses(tmp_path):
    base = outcomes(N, 80)
    new = [ok and i >= 40 for i, ok in enumerate(base)]  # 40 problems flip correct -> wrong
    cmp = compare_runs(_run(tmp_path / "a", base), _run(tmp_path / "b", new))
    c = cmp.cells[0]
    assert cmp.regressed and c.regressed
    assert c.b == 40 and c.c == 0
    assert c.delta == pytest.approx(-0.4)
    assert c.p_value < 1e-6
    assert c.ci_low <= -0.4 <= c.ci_high < 0
    text = render_comparison(cmp)
    assert "REGRESSED" in text and "REGRESSION in 1 of 1" in text
    # an improvement of the same size is not a regression
    assert not compare_runs(_run(tmp_path / "c", new), _run(tmp_path / "d", base)).regressed


def test_small_drop_within_max_drop(tmp_path):
    base = outcomes(N, 80)
    new = [ok and i >= 10 for i, ok in enumerate(base)]  # 10 flips: significant (p ~ 0.002) but only 10 pp
    a, b = _run(tmp_path / "a", base), _run(tmp_path / "b", new)
    strict = compare_runs(a, b)
    assert strict.cells[0].p_value < 0.01 and strict.regressed
    tolerant = compare_runs(a, b, max_drop=0.15)
    assert not tolerant.regressed and tolerant.cells[0].delta == pytest.approx(-0.1)
    assert "within max-drop" in render_comparison(tolerant)


def test_insignificant_drop_is_not_a_regression(tmp_path):
    base = outcomes(N, 80)
    new = list(base)
    for i in range(5):  # 5 lost, 2 gained: p = 0.45
        new[i] = False
    for i in range(80, 82):
        new[i] = True
    cmp = compare_runs(_run(tmp_path / "a", base), _run(tmp_path / "b", new))
    c = cmp.cells[0]
    assert (c.b, c.c) == (5, 2) and c.delta == pytest.approx(-0.03)
    assert c.p_value == pytest.approx(mcnemar_exact_p(5, 2)) and c.p_value > 0.05
    assert not cmp.regressed


def test_partial_overlap_of_problems(tmp_path):
    base_ids = [f"q{i}" for i in range(0, 50)]
    new_ids = [f"q{i}" for i in range(20, 80)]
    base = _run(tmp_path / "a", [True] * 50, ids=base_ids)
    new = _run(tmp_path / "b", [i < 40 for i in range(60)], ids=new_ids)  # q20..q59 right, q60..q79 wrong
    c = compare_runs(base, new).cells[0]
    assert (c.n_shared, c.n_only_base, c.n_only_new) == (30, 20, 30)
    assert c.base_accuracy == 1.0 and c.new_accuracy == 1.0 and c.delta == 0.0
    assert "30 (+20 base, +30 new)" in render_comparison(compare_runs(base, new))


def test_bootstrap_deterministic_and_covers_delta():
    rng = np.random.default_rng(1)
    x = (rng.random(200) < 0.6).astype(int)
    y = np.where(rng.random(200) < 0.2, 1 - x, x)
    ci1 = paired_bootstrap_ci(x, y, n_boot=2000, seed=3)
    assert ci1 == paired_bootstrap_ci(x, y, n_boot=2000, seed=3)
    delta = y.mean() - x.mean()
    assert ci1[0] <= delta <= ci1[1]
    # the multinomial shortcut matches index resampling in distribution
    idx = np.random.default_rng(7).integers(0, 200, size=(4000, 200))
    naive = np.percentile((y[idx] - x[idx]).mean(axis=1), [2.5, 97.5])
    assert ci1 == pytest.approx(tuple(naive), abs=0.015)


def test_version_or_fingerprint_mismatch_refused(tmp_path):
    correct = outcomes(N, 50)
    base = _run(tmp_path / "a", correct)
    other_version = _run(tmp_path / "b", correct, tasks={"math500": {"version": "2"}})
    with pytest.raises(ConfigError, match="version"):
        compare_runs(base, other_version)
    other_data = _run(tmp_path / "c", correct, tasks={"math500": {"data_fingerprint": "fp-other"}})
    with pytest.raises(ConfigError, match="different data"):
        compare_runs(base, other_data)


def test_cells_pair_on_the_budget_unit(tmp_path):
    """An n4 cell is other compute than a tokens4 cell: never paired, whatever the accuracies."""
    good, bad = outcomes(N, 80), outcomes(N, 40)
    with pytest.raises(ConfigError, match="budget units differ.*base: n; new: tokens"):
        compare_runs(_run(tmp_path / "a", good, unit="n"), _run(tmp_path / "b", bad, unit="tokens"))
    # both runs hold both units (listed in another order): each cell meets its own unit only
    base = load_run(write_run(tmp_path / "c", [FakeCell("math500", "oracle", "best_of_n", 4, good),
                                               FakeCell("math500", "oracle", "best_of_n", 4, bad, budget_unit="tokens")]))
    new = load_run(write_run(tmp_path / "d", [FakeCell("math500", "oracle", "best_of_n", 4, bad, budget_unit="tokens"),
                                              FakeCell("math500", "oracle", "best_of_n", 4, good)]))
    cmp = compare_runs(base, new)
    assert not cmp.regressed and sorted(c.budget_unit for c in cmp.cells) == ["n", "tokens"]
    assert all(c.delta == 0 for c in cmp.cells)
    assert {c.key for c in cmp.cells} == {("math500", "replay:pool.jsonl", "oracle", "best_of_n", u, 4) for u in ("n", "tokens")}


@pytest.mark.parametrize("setting, value", [("temperature", 1.0), ("top_p", 0.95), ("max_tokens", 256), ("seed", 1)])
def test_other_sampling_settings_or_seed_refused(tmp_path, setting, value):
    correct = outcomes(N, 50)
    base = _run(tmp_path / "a", correct)
    other = _run(tmp_path / "b", correct, config={setting: value})
    with pytest.raises(ConfigError, match=rf"{setting}: .* \(base\) vs {value} \(new\)"):
        compare_runs(base, other)
    with pytest.raises(ConfigError, match=setting):
        compare_runs(other, base)


def test_other_task_configuration_or_grader_version_refused(tmp_path):
    def identity(**config):
        return {"identity": {"name": "math500", "class": "prmbench.tasks.math500.Math500Task", "version": "1",
                             "config": {"grading_timeout": 5.0, "math_verify": "0.9.0", **config}}}

    correct = outcomes(N, 50)
    base = _run(tmp_path / "a", correct, tasks={"math500": identity()})
    same = _run(tmp_path / "b", correct, tasks={"math500": {**identity(), "n_problems": N}})
    assert not compare_runs(base, same).regressed
    grader = _run(tmp_path / "c", correct, tasks={"math500": identity(math_verify="0.10.0")})
    with pytest.raises(ConfigError, match=r"task math500 configuration\.config\.math_verify: '0\.9\.0' \(base\) vs '0\.10\.0'"):
        compare_runs(base, grader)
    args = _run(tmp_path / "d", correct, tasks={"math500": identity(grading_timeout=1.0)})
    with pytest.raises(ConfigError, match="grading_timeout"):
        compare_runs(base, args)
    unrecorded = _run(tmp_path / "e", correct)  # no task identity in the new run
    with pytest.raises(ConfigError, match="configuration.*not recorded"):
        compare_runs(base, unrecorded)


def test_cli_refuses_other_settings_with_exit_2(tmp_path, capsys):
    from prmbench.cli import main

    correct = outcomes(N, 50)
    base = _run(tmp_path / "a", correct)
    hot = _run(tmp_path / "b", correct, config={"temperature": 1.2})
    assert main(["compare", str(base.path), str(base.path)]) == 0
    capsys.readouterr()
    assert main(["compare", str(base.path), str(hot.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "temperature: 0.7 (base) vs 1.2 (new)" in err


def test_no_shared_cell_refused(tmp_path):
    correct = outcomes(N, 50)
    with pytest.raises(ConfigError, match="share no cell"):
        compare_runs(_run(tmp_path / "a", correct, budget=4), _run(tmp_path / "b", correct, budget=8))


def test_no_shared_problem_refused(tmp_path):
    a = _run(tmp_path / "a", [True] * 5, ids=[f"a{i}" for i in range(5)])
    b = _run(tmp_path / "b", [True] * 5, ids=[f"b{i}" for i in range(5)])
    with pytest.raises(DataError, match="no problem in common"):
        compare_runs(a, b)
    with pytest.raises(DataError, match="no problem in common"):
        compare_runs(load_run(a.path, with_records=False), load_run(a.path, with_records=False))


def test_cells_in_one_run_only_are_listed(tmp_path):
    correct = outcomes(N, 50)
    extra_base = [FakeCell("math500", "random", "best_of_n", 4, correct)]
    extra_new = [FakeCell("math500", "none", "majority_vote", 4, correct)]
    cmp = compare_runs(_run(tmp_path / "a", correct, extra_cells=extra_base),
                       _run(tmp_path / "b", correct, extra_cells=extra_new))
    assert len(cmp.cells) == 1
    assert cmp.only_in_base == [("math500", "replay:pool.jsonl", "random", "best_of_n", "n", 4)]
    assert cmp.only_in_new == [("math500", "replay:pool.jsonl", "none", "majority_vote", "n", 4)]
    text = render_comparison(cmp)
    assert "only in base" in text and "random/best_of_n/n4" in text and "only in new" in text


def test_bad_arguments(tmp_path):
    a = _run(tmp_path / "a", outcomes(10, 5))
    with pytest.raises(ConfigError):
        compare_runs(a, a, max_drop=2)
    with pytest.raises(ConfigError):
        compare_runs(a, a, alpha=0)


def test_comparison_is_frozen(tmp_path):
    a = _run(tmp_path / "a", outcomes(10, 5))
    cmp = compare_runs(a, a)
    with pytest.raises(AttributeError):
        cmp.regressed = True  # type: ignore[misc]
