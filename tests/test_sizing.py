"""plan_samples: how many samples a step-level search may draw now, and with how many tokens."""

from __future__ import annotations

from prmbench.strategies.sizing import UnitPrice, plan_samples

PRICE = UnitPrice(fixed_flops=100.0, flops_per_token=10.0, seconds=0.5)  # a 48-token sample: 580 FLOPs


def test_uncapped_draws_everything_at_full_length():
    assert plan_samples({}, 4, 48, None) == (4, 48)
    assert plan_samples({}, 4, 48, PRICE) == (4, 48)


def test_a_reached_cap_draws_nothing():
    assert plan_samples({"flops": 0.0}, 4, 48, PRICE) is None
    assert plan_samples({"flops": 1e9, "tokens": -3.0}, 4, 48, PRICE) is None
    assert plan_samples({"flops": 1e9}, 0, 48, PRICE) is None


def test_before_any_measurement_one_sample_within_the_token_cap():
    assert plan_samples({"flops": 1e9}, 4, 48, None) == (1, 48)
    assert plan_samples({"tokens": 20.0}, 4, 48, None) == (1, 20)


def test_as_many_full_samples_as_surely_fit():
    assert plan_samples({"flops": 580.0 * 3 + 1}, 4, 48, PRICE) == (3, 48)
    assert plan_samples({"flops": 1e9}, 4, 48, PRICE) == (4, 48)
    assert plan_samples({"tokens": 100.0}, 4, 48, PRICE) == (2, 48)
    # seconds never shortens a sample and never blocks the first one
    assert plan_samples({"seconds": 1.2}, 4, 48, PRICE) == (2, 48)
    assert plan_samples({"seconds": 0.1}, 4, 48, PRICE) == (1, 48)


def test_the_last_sample_is_shortened_to_what_is_left():
    assert plan_samples({"flops": 400.0}, 4, 48, PRICE) == (1, 30)  # 100 + 10 * 30 = 400
    assert plan_samples({"tokens": 7.0}, 4, 48, PRICE) == (1, 7)
    assert plan_samples({"flops": 400.0, "tokens": 12.0}, 4, 48, PRICE) == (1, 12)


def test_below_one_token_start_only_if_overshoot_is_at_most_the_undershoot():
    # a one-token sample costs 110: start it with 55 or more left, stop with less
    assert plan_samples({"flops": 60.0}, 4, 48, PRICE) == (1, 1)
    assert plan_samples({"flops": 50.0}, 4, 48, PRICE) is None


def test_free_components_are_never_limited_by_flops():
    free = UnitPrice(fixed_flops=0.0, flops_per_token=0.0)
    assert plan_samples({"flops": 1.0}, 4, 48, free) == (4, 48)
