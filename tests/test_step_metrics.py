"""Step-level metric definitions against hand-worked examples (ProcessBench, PRM800K, PRMBench)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prmbench.step_eval import (auroc, best_threshold, first_below, harmonic_f1, processbench_metrics, prmscore,
                                rating_metrics, step_confusion)

# label, step scores -> predicted at 0.5 (first step below 0.5)
PB = [
    (1, [0.9, 0.2, 0.8]),   # predicted 1: right
    (0, [0.6, 0.1]),        # predicted 1: wrong (the error is at 0)
    (-1, [0.7, 0.8]),       # predicted -1: right
    (-1, [0.9, 0.4]),       # predicted 1: wrong
    (2, [0.3, 0.9, 0.1]),   # predicted 0: wrong
]


def _pb_records(rows=PB):
    return [{"problem_id": f"s{i}", "label": lab, "step_scores": s, "truncated": False} for i, (lab, s) in enumerate(rows)]


def test_first_below_is_strict():
    assert first_below([0.5, 0.49], 0.5) == 1
    assert first_below([0.6, 0.7], 0.5) == -1
    assert first_below([], 0.5) == -1


def test_processbench_metrics_hand_worked():
    m = processbench_metrics(_pb_records(), 0.5)
    assert (m["n"], m["n_erroneous"], m["n_correct"]) == (5, 3, 2)
    assert m["error_acc"] == pytest.approx(1 / 3)
    assert m["correct_acc"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(0.4)  # 2 * (1/3) * (1/2) / (1/3 + 1/2)
    # first-error steps (1 - score): 0.8, 0.4, 0.9; known-correct steps: 0.1 | 0.3 0.2 | 0.1 0.6 | 0.7 0.1
    assert m["auroc"] == pytest.approx(19 / 21)
    assert m["n_auroc_steps"] == [3, 7]
    assert m["solution_auroc"] == pytest.approx(1.0)  # 1 - min: errors 0.8 0.9 0.9 vs correct 0.3 0.6
    lo, hi = m["f1_ci"]
    assert 0.0 <= lo <= m["f1"] <= hi <= 1.0


def test_harmonic_f1_edges():
    assert harmonic_f1(0.0, 0.0) == 0.0
    assert harmonic_f1(1.0, 0.0) == 0.0
    assert harmonic_f1(0.5, 0.5) == pytest.approx(0.5)


def test_auroc_ties_count_half_and_empty_sides():
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([1.0, 0.0], [0.5]) == 0.5
    assert auroc([], [0.1]) is None


def test_auroc_matches_pairwise_count():
    rng = np.random.default_rng(1)
    pos, neg = rng.integers(0, 5, 40) / 4, rng.integers(0, 5, 30) / 4  # many ties
    pairs = sum((p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg))
    assert auroc(pos, neg) == pytest.approx(pairs / (40 * 30))


def test_best_threshold_is_the_f1_maximum_of_a_brute_force_grid():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        n = int(rng.integers(2, 6))
        label = -1 if i % 2 else int(rng.integers(0, n))
        rows.append((label, [float(x) for x in rng.random(n).round(3)]))
    recs = _pb_records(rows)
    t, f1 = best_threshold(recs)
    grid = np.linspace(0, 1, 2001)
    brute = max(processbench_metrics(recs, float(g), n_boot=1)["f1"] for g in grid)
    assert f1 == pytest.approx(brute)
    assert processbench_metrics(recs, t, n_boot=1)["f1"] == pytest.approx(f1)
    assert processbench_metrics(recs, 0.5, n_boot=1)["f1_oracle_threshold"] == pytest.approx(f1)


def test_truncated_error_step_is_never_located():
    recs = [{"label": 3, "step_scores": [0.9, 0.8], "truncated": True}, {"label": -1, "step_scores": [0.9], "truncated": False}]
    m = processbench_metrics(recs, 0.5)
    assert m["error_acc"] == 0.0 and m["correct_acc"] == 1.0 and m["n_truncated"] == 1


def test_rating_metrics_hand_worked():
    rows = [(-1, 0.2), (-1, 0.6), (0, 0.4), (1, 0.9), (1, 0.7), (0, None)]
    recs = [{"rating": r, "score": s, "truncated": s is None} for r, s in rows]
    m = rating_metrics(recs, 0.5)
    assert m["auroc"] == pytest.approx(5 / 6)  # bad 0.8 0.4 vs rest 0.6 0.1 0.3
    assert m["auroc_neg_vs_pos"] == pytest.approx(1.0)  # 0.8 0.4 vs 0.1 0.3
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["mean_score_rating_-1"] == pytest.approx(0.4)
    assert m["mean_score_rating_0"] == pytest.approx(0.4)
    assert m["mean_score_rating_1"] == pytest.approx(0.8)
    assert (m["n"], m["n_scored"], m["n_truncated"]) == (6, 5, 1)


def test_prmbench_confusion_and_prmscore_hand_worked():
    conf = step_confusion([2], [0.9, 0.3, 0.5, 0.6], 0.5)  # 0.5 is not above 0.5: predicted invalid
    assert conf == {"TP": 2, "FP": 0, "TN": 1, "FN": 1}
    s = prmscore(conf)
    assert s["f1"] == pytest.approx(0.8)  # P = 1, R = 2/3
    assert s["negative_f1"] == pytest.approx(2 / 3)  # P = 1/2, R = 1
    assert s["prmscore"] == pytest.approx(0.5 * 0.8 + 0.5 * 2 / 3)


def test_prmscore_is_the_macro_f1_of_the_two_step_classes():
    """The paper's PRMScore = 0.5 F1_neg + 0.5 F1 is the macro-averaged F1 over {correct, erroneous} steps."""
    rng = np.random.default_rng(2)
    gold = rng.random(500) < 0.3  # True = erroneous step
    pred_invalid = np.where(rng.random(500) < 0.7, gold, ~gold)

    def f1(truth, pred):
        tp = (truth & pred).sum()
        return 2 * tp / (truth.sum() + pred.sum())

    macro = (f1(gold, pred_invalid) + f1(~gold, ~pred_invalid)) / 2
    conf = {"TP": int((~gold & ~pred_invalid).sum()), "FP": int((gold & ~pred_invalid).sum()),
            "TN": int((gold & pred_invalid).sum()), "FN": int((~gold & pred_invalid).sum())}
    assert prmscore(conf)["prmscore"] == pytest.approx(macro)


def test_prmscore_without_erroneous_steps_has_no_negative_f1():
    s = prmscore({"TP": 3, "FP": 0, "TN": 0, "FN": 1})
    assert s["negative_f1"] is None and s["prmscore"] is None and s["f1"] == pytest.approx(6 / 7)


def test_error_steps_beyond_the_solution_label_nothing():
    assert step_confusion([5], [0.9, 0.1], 0.5) == {"TP": 1, "FP": 0, "TN": 0, "FN": 1}


def test_mean_f1_ci_brackets_the_mean_and_is_the_subset_ci_for_one_subset():
    from prmbench.step_eval import mean_f1_ci

    recs = _pb_records()
    assert mean_f1_ci([recs], 0.5) == processbench_metrics(recs, 0.5)["f1_ci"]
    lo, hi = mean_f1_ci([recs, recs[::-1]], 0.5)
    assert lo <= 0.4 <= hi
    assert mean_f1_ci([recs, [r for r in recs if r["label"] >= 0]], 0.5) is None
