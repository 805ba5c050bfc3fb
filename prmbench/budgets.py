"""Budget units and the compute-matched allowance.

A run has one budget unit (`--budget-unit`); each budget value of `--budget` becomes one
`Budget` per (cell, problem):

- `n` (default, compute-matched): budget N is the compute best-of-N spends on the problem. The
  allowance is measured, per problem, as the FLOPs of pool samples 0..N-1 (the N independent full
  samples best-of-N draws) plus scoring each of them once with the cell's reward model (no scoring
  for strategies without one). The meter stops every strategy once its spend reaches that
  allowance; see `OVERSHOOT_BOUND`.
- `nominal`: the literature's parameterisation (N samples, N // M beams or subtrees of M
  expansions, N MCTS simulations) with no cap; the best-of-N allowance is still recorded beside
  the measured spend, for comparison.
- `tokens`, `flops`, `seconds`: explicit caps on generated policy tokens, on total FLOPs, or on
  the model-call seconds of the search (as measured when each call was computed; noisy, so
  run.json records the hardware).
"""

from __future__ import annotations

from prmbench.context import Meter, ModelCalls
from prmbench.errors import ConfigError, did_you_mean
from prmbench.interfaces import RewardModel
from prmbench.types import Budget, Problem, Spend

BUDGET_UNITS: tuple[str, ...] = ("n", "nominal", "tokens", "flops", "seconds")
"""Accepted values of --budget-unit; `n` is the default."""

OVERSHOOT_BOUND = (
    "the unit of work is one sample plus its score; a search starts a unit only while spend is below the "
    "allowance, and step-level searches size every unit to what the rest affords (an expansion draws only "
    "the samples that fit, the last one possibly with a shortened token limit; an MCTS rollout runs with the "
    "tokens the rest pays for, or is skipped), so spend - allowance <= the cost of one sample plus its score "
    "(recorded per search as info.max_unit_flops); pool strategies under an explicit cap draw one sample "
    "(plus its scoring) per unit"
)

BUDGET_DEFINITIONS: dict[str, str] = {
    "n": ("budget N = the compute of best-of-N on the problem, measured per problem: FLOPs (2 x parameters x "
          "tokens, per model) of the problem's pool samples 0..N-1 (N independent full samples; policy: prompt "
          "+ generated tokens) plus scoring each once with the cell's reward model (RM: tokens read; none for "
          "strategies without a reward model). Every strategy is stopped by the meter at that allowance; "
          + OVERSHOOT_BOUND + "."),
    "nominal": ("budget N = the literature's parameterisation (N samples; N // M beams or subtrees with M "
                "expansions per step; N MCTS simulations), not capped; the best-of-N allowance (as for unit n) "
                "is recorded beside the measured spend."),
    "tokens": "budget = a cap on generated policy tokens per problem; " + OVERSHOOT_BOUND + ".",
    "flops": "budget = a cap on total FLOPs (policy + RM, 2 x parameters x tokens) per problem; " + OVERSHOOT_BOUND + ".",
    "seconds": ("budget = a cap on the model-call seconds of a search per problem (each call charged the wall time "
                "measured when it was computed; harness overhead excluded; noisy: see run.json hardware); "
                + OVERSHOOT_BOUND + "."),
}
SPEND_DEFINITION = (
    " Spend is measured per search: tokens, calls, seconds and FLOPs = 2 x parameters x tokens per model; "
    "samples and scores served from the shared pool or the cache are charged as when they were computed."
)


def check_unit(unit: str) -> str:
    """Validate a --budget-unit value, with a did-you-mean."""
    if unit not in BUDGET_UNITS:
        raise ConfigError(f"unknown --budget-unit {unit!r}.{did_you_mean(unit, BUDGET_UNITS)} "
                          f"Choose one of: {', '.join(BUDGET_UNITS)} (default n: compute-matched best-of-N)")
    return unit


def definition(unit: str) -> str:
    """The exact meaning of a budget in `unit`, as written to run.json's budget_definition."""
    return BUDGET_DEFINITIONS[check_unit(unit)] + SPEND_DEFINITION


def measure_allowance(calls: ModelCalls, rm: RewardModel | None, problem: Problem, n: int) -> Spend:
    """The spend of best-of-N on `problem`: pool samples 0..n-1 plus one RM score each.

    Uses the run's cache, so the samples and scores are computed once and shared with the pool
    strategies of the run. `rm` None means a strategy without a reward model (no scoring).
    """
    gens = calls.generate([calls.request(problem, n=n)], [problem.id])[0]
    meter = Meter(calls.policy.num_parameters, rm.num_parameters if rm is not None else 0)
    meter.charge_generations(gens)
    if rm is not None:
        steps = [calls.task.split_steps(g.text) for g in gens]
        meter.charge_scores(calls.score(rm, problem, steps, texts=[g.text for g in gens]))
    return meter.spend


def make_budget(unit: str, value: int, allowance: Spend | None) -> Budget:
    """The Budget of one search: `value` in `unit`, capped by the measured allowance for unit n."""
    if unit == "n":
        assert allowance is not None
        return Budget(n=value, unit=unit, max_flops=allowance.flops)
    if unit == "nominal":
        return Budget(n=value, unit=unit)
    if unit == "tokens":
        return Budget(n=value, unit=unit, max_tokens=value)
    if unit == "flops":
        return Budget(n=value, unit=unit, max_flops=float(value))
    return Budget(n=value, unit=unit, max_seconds=float(value))


def needs_allowance(unit: str) -> bool:
    """Whether cells of this unit measure the best-of-N allowance (n: enforced; nominal: reported)."""
    return unit in ("n", "nominal")

