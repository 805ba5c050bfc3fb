"""Sizing a search's next unit of work to what the remaining allowance affords.

The unit of work of a step-level search is one sample and its score. Before drawing samples a
search asks `plan_samples` how many it may draw now, and with how many tokens at most:

- uncapped budgets (unit nominal) draw everything at once, at the run's --max-tokens;
- under a cap, as many full-size samples as surely fit (`UnitPrice` estimates a sample's cost
  from the search's own measurements: prompt tokens of the prefix, RM tokens per candidate,
  seconds per sample) are drawn together; when not even one fits, a single sample with a
  shortened token limit (what the rest pays for) is drawn; when not even a one-token sample
  fits, one is drawn only if it overshoots by no more than stopping would undershoot, and
  otherwise the search stops (`None`).

The meter is still the authority: a unit only starts while spend < cap, so a search overshoots
by at most one sample plus its score, whatever the estimates; they decide how close to the
allowance the search ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class UnitPrice:
    """Estimated cost of one sample plus its score: `fixed_flops` (reading the prompt; the RM
    reading the candidate before its new step) + `flops_per_token` per generated token (the
    policy writing it, the RM reading it), and `seconds` per sample (model-call seconds)."""

    fixed_flops: float
    flops_per_token: float
    seconds: float = 0.0

    def flops(self, tokens: int) -> float:
        """FLOPs of one sample of `tokens` generated tokens and its score."""
        return self.fixed_flops + self.flops_per_token * tokens


def _fits(room: float, cost: float) -> float:
    """How many units of `cost` fit in `room` (infinite for a free unit)."""
    return math.inf if cost <= 0 or math.isinf(room) else math.floor(room / cost)


def plan_samples(headroom: Mapping[str, float], want: int, max_tokens: int,
                 price: UnitPrice | None) -> tuple[int, int] | None:
    """(how many samples to draw now, their token limit), or None: the allowance is spent.

    `headroom` is `SearchContext.headroom()` (the rest of each cap), `want` the samples the search
    would like, `max_tokens` the run's limit per sample, `price` the estimated cost of one sample
    (None before the search has measured anything: one sample then, the token cap applied).
    """
    if want < 1:
        return None
    if not headroom:
        return want, max_tokens
    if any(room <= 0 for room in headroom.values()):
        return None
    tokens_left = headroom.get("tokens", math.inf)
    if price is None:
        return 1, int(min(max_tokens, tokens_left))
    full = min(
        _fits(headroom.get("flops", math.inf), price.flops(max_tokens)),
        _fits(tokens_left, max_tokens),
        max(1.0, _fits(headroom.get("seconds", math.inf), price.seconds)),  # seconds: never shorten
    )
    if full >= 1:
        return int(min(want, full)), max_tokens
    cap = tokens_left
    room = headroom.get("flops", math.inf)
    if price.flops_per_token > 0 and not math.isinf(room):
        cap = min(cap, math.floor((room - price.fixed_flops) / price.flops_per_token))
    elif price.fixed_flops > room:
        cap = 0
    cap = int(min(cap, max_tokens))
    if cap >= 1:
        return 1, cap
    # not even one token fits: overshoot by at most what stopping here would leave unspent
    return (1, 1) if price.flops(1) <= 2 * room else None
