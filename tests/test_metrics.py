"""cell_metrics: accuracy, standard error, Wilson interval and mean spend against hand computation."""

from __future__ import annotations

import math

import pytest

from prmbench.metrics import METRIC_KEYS, cell_metrics, wilson_interval


def _rec(correct: bool, gen: int = 10, prompt: int = 5, rm: int = 3, pf: float = 100.0, rf: float = 20.0,
         seconds: float = 0.5, n_candidates: int = 4) -> dict:
    return {"problem_id": "x", "correct": correct, "n_candidates": n_candidates,
            "spend": {"prompt_tokens": prompt, "generated_tokens": gen, "rm_tokens": rm, "policy_calls": 1,
                      "rm_calls": 1, "seconds": seconds, "policy_flops": pf, "rm_flops": rf, "flops": pf + rf}}


def test_wilson_known_value():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=5e-4)
    assert high == pytest.approx(0.9433, abs=5e-4)


def test_wilson_edges_stay_in_unit_interval_and_are_nonempty():
    assert wilson_interval(0, 10)[0] == 0.0 and 0 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == 1.0 and 0.65 < wilson_interval(10, 10)[0] < 1
    low, high = wilson_interval(1, 1)
    assert 0 < low < high == 1.0
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_cell_metrics_values():
    records = [_rec(True, gen=10, seconds=1.0), _rec(True, gen=20, seconds=2.0), _rec(False, gen=30, seconds=3.0),
               _rec(True, gen=40, seconds=4.0, n_candidates=8)]
    m = cell_metrics(records)
    assert set(m) == set(METRIC_KEYS)
    assert m["n"] == 4 and m["n_correct"] == 3
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["stderr"] == pytest.approx(math.sqrt(0.75 * 0.25 / 3))
    low, high = wilson_interval(3, 4)
    assert (m["ci_low"], m["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert m["ci_low"] < 0.75 < m["ci_high"]
    assert m["ci_method"] == "wilson"
    assert m["mean_generated_tokens"] == pytest.approx(25.0)
    assert m["mean_prompt_tokens"] == pytest.approx(5.0)
    assert m["mean_rm_tokens"] == pytest.approx(3.0)
    assert m["mean_policy_flops"] == pytest.approx(100.0)
    assert m["mean_rm_flops"] == pytest.approx(20.0)
    assert m["mean_flops"] == pytest.approx(120.0)
    assert m["mean_seconds"] == pytest.approx(2.5)
    assert m["mean_candidates"] == pytest.approx(5.0)


def test_cell_metrics_wilson_8_of_10():
    m = cell_metrics([_rec(i < 8) for i in range(10)])
    assert m["accuracy"] == pytest.approx(0.8)
    assert round(m["ci_low"], 3) == 0.490 and round(m["ci_high"], 3) == 0.943
    assert m["stderr"] == pytest.approx(math.sqrt(0.8 * 0.2 / 9))


def test_cell_metrics_empty_and_single():
    m = cell_metrics([])
    assert m["n"] == 0 and m["n_correct"] == 0
    for k in METRIC_KEYS:
        if k not in ("n", "n_correct", "ci_method"):
            assert m[k] is None, k
    one = cell_metrics([_rec(False)])
    assert one["n"] == 1 and one["accuracy"] == 0.0 and one["stderr"] == 0.0
    assert one["ci_low"] == 0.0 and 0 < one["ci_high"] < 1


def test_cell_metrics_derives_total_flops_and_tolerates_missing_spend_keys():
    r = _rec(True)
    del r["spend"]["flops"]
    del r["spend"]["rm_tokens"]
    m = cell_metrics([r, {"problem_id": "y", "correct": False}])
    assert m["mean_flops"] == pytest.approx(60.0)
    assert m["mean_rm_tokens"] == 0.0
    assert m["accuracy"] == 0.5


def test_cell_metrics_is_json_serialisable():
    import json

    json.dumps(cell_metrics([_rec(True), _rec(False)]))
    json.dumps(cell_metrics([]))
