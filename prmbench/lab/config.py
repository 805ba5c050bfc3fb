"""The lab's configuration: which policies, label sets, PRMs and cross-run cells it makes.

Two presets: the full lab (sized for about 20 minutes on 2 uncontended CPU cores) and
``--quick`` (a few minutes; tiny models whose accuracy is near zero: a plumbing check of every
stage, used by the end-to-end test).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from prmbench.lab.trainer import PolicySpec

DOMAINS = ("lab_math", "lab_code")
#: Operations per problem (the difficulty knob): a mix from easy to hard.
MIN_STEPS, MAX_STEPS = 2, 5
STRATEGIES = ("best_of_n", "majority_vote", "weighted_majority", "beam_search", "mcts", "dvts")


@dataclass(frozen=True)
class PRMSpec:
    """A lab PRM: trained on the labels of `domain` from the backbone of annotator `backbone` (0 or 1)."""

    domain: str
    backbone: int = 0
    filtered: bool = False
    steps: int = 200
    batch: int = 32
    lr: float = 3e-4

    @property
    def name(self) -> str:
        """Short name, e.g. ``math_prm_a`` or ``code_prm_b_filtered``."""
        return f"{self.domain.removeprefix('lab_')}_prm_{'ab'[self.backbone]}{'_filtered' if self.filtered else ''}"


@dataclass(frozen=True)
class LabConfig:
    """Everything that decides the lab's results (its hash guards --resume of an output folder)."""

    seed: int = 0
    quick: bool = False
    min_steps: int = MIN_STEPS
    max_steps: int = MAX_STEPS
    n_problems: int = 100
    label_problems: int = 200
    eval_problems: int = 60
    rollouts: int = 4
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16)
    strategies: tuple[str, ...] = STRATEGIES
    max_tokens: int = 96
    temperature: float = 1.0
    policies: dict[str, tuple[PolicySpec, PolicySpec]] = field(default_factory=dict)
    prms: tuple[PRMSpec, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (lab_config.json)."""
        d = asdict(self)
        d["budgets"], d["strategies"] = list(self.budgets), list(self.strategies)
        return d

    def task_args(self, domain: str, split: str, n: int) -> dict[str, Any]:
        """Arguments of the lab task `domain` on `split` with `n` problems."""
        return {"n_problems": n, "min_steps": self.min_steps, "max_steps": self.max_steps, "seed": self.seed,
                "split": split}


#: The teacher's per-step slip rate per domain (`PolicySpec.teacher_error`). A policy that has
#: learned the domain errs at about this rate at temperature 1.0, so its single-sample accuracy is
#: the mean of (1 - rate)^k over the problems' k steps: ~0.57 for code at 0.15 (measured 0.58 on 200
#: test problems). Math is lower: the policy adds arithmetic slips of its own (measured 0.32 at
#: 0.15, hence 0.10 here, which predicts 0.49 with the same own slips and 0.70 with none).
TEACHER_ERROR = {"lab_math": 0.10, "lab_code": 0.15}


def _policies(seed: int, quick: bool) -> dict[str, tuple[PolicySpec, PolicySpec]]:
    size = dict(min_steps=MIN_STEPS, max_steps=MAX_STEPS)
    if quick:
        base = dict(hidden=32, layers=1, heads=4, steps=40, batch=32, train_problems=1000, warmup=10, **size)
        return {d: (PolicySpec(task=d, seed=seed, teacher_error=TEACHER_ERROR[d], **base),
                    PolicySpec(task=d, seed=seed + 1, teacher_error=TEACHER_ERROR[d], **{**base, "hidden": 24}))
                for d in DOMAINS}
    # Annotator a (the searched policy): h64 x 2 layers, 1000 steps (its loss is at the teacher's
    # noise floor by then); annotator b: smaller and shorter (it only labels).
    return {d: (PolicySpec(task=d, hidden=64, layers=2, steps=1000, seed=seed, teacher_error=TEACHER_ERROR[d], **size),
                PolicySpec(task=d, hidden=48, layers=2, steps=600, seed=seed + 1, teacher_error=TEACHER_ERROR[d],
                           **size))
            for d in DOMAINS}


def lab_config(seed: int = 0, quick: bool = False) -> LabConfig:
    """The full (default) or quick preset for `seed`."""
    prms = tuple(PRMSpec(domain=d, backbone=b) for d in DOMAINS for b in (0, 1))
    prms += tuple(PRMSpec(domain=d, backbone=0, filtered=True) for d in DOMAINS)
    cfg = LabConfig(seed=seed, quick=quick, policies=_policies(seed, quick), prms=prms)
    if quick:
        cfg = replace(cfg, n_problems=6, label_problems=6, eval_problems=4, rollouts=2, budgets=(1, 2, 4),
                      prms=tuple(replace(p, steps=10, batch=8) for p in prms))
    return cfg
