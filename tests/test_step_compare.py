"""compare on step-level cells: statistics per task family, significance and the regression rule."""

from __future__ import annotations

import pytest

from prmbench.step_compare import compare_step_cell


def _pb(hits_err, hits_cor):
    recs = [{"label": 1, "predicted": 1 if h else -1} for h in hits_err]
    return recs + [{"label": -1, "predicted": -1 if h else 0} for h in hits_cor]


def test_processbench_f1_change_and_mcnemar():
    base = _pb([1] * 30 + [0] * 10, [1] * 30 + [0] * 10)  # error_acc 0.75, correct_acc 0.75
    new = _pb([1] * 10 + [0] * 30, [1] * 30 + [0] * 10)   # error_acc 0.25
    r = compare_step_cell(base, new, "processbench_math", "prm")
    assert r.statistic == "f1" and r.base_value == pytest.approx(0.75)
    assert r.new_value == pytest.approx(2 * 0.25 * 0.75 / 1.0)
    assert (r.b, r.c) == (20, 0) and r.p_value < 1e-5 and r.regressed
    assert r.ci_low < r.delta < r.ci_high < 0
    same = compare_step_cell(base, base, "processbench_math", "prm")
    assert same.delta == 0 and not same.regressed and (same.b, same.c) == (0, 0)
    assert not compare_step_cell(base, new, "processbench_math", "prm", max_drop=0.5).regressed


def test_prm800k_accuracy_change():
    base = [{"rating": -1, "score": 0.1}] * 20 + [{"rating": 1, "score": 0.9}] * 20
    new = [{"rating": -1, "score": 0.9}] * 20 + [{"rating": 1, "score": 0.9}] * 20
    r = compare_step_cell(base, new, "prm800k_test", "prm")
    assert r.statistic == "accuracy" and (r.base_value, r.new_value) == (1.0, 0.5)
    assert (r.b, r.c) == (20, 0) and r.regressed


def test_prmbench_prmscore_change_uses_the_bootstrap():
    good = {"classification": "confidence", "TP": 3, "FP": 0, "TN": 1, "FN": 0}
    bad = {"classification": "confidence", "TP": 0, "FP": 1, "TN": 0, "FN": 3}
    correct = {"classification": "correct", "TP": 9, "FP": 0, "TN": 0, "FN": 0}
    r = compare_step_cell([good] * 30 + [correct], [bad] * 30 + [correct], "prmbench_prm800k", "prm")
    assert r.statistic == "prmscore" and r.base_value == pytest.approx(1.0) and r.new_value == pytest.approx(0.0)
    assert r.b is None and r.p_value is None and r.ci_high < 0 and r.regressed
