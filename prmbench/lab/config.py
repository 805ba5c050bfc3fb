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
STRATEGIES = ("best_of_n", "majority_vote", "weighted_majority", "beam_search", "mcts", "dvts")


@dataclass(frozen=True)
class PRMSpec:
    """A lab PRM: trained on the labels of `domain` from the backbone of annotator `backbone` (0 or 1)."""

    domain: str
    backbone: int = 0
    filtered: bool = False
    steps: int = 300
    batch: int = 32
    lr: float = 1e-3

    @property
    def name(self) -> str:
        """Short name, e.g. ``math_prm_a`` or ``code_prm_b_filtered``."""
        return f"{self.domain.removeprefix('lab_')}_prm_{'ab'[self.backbone]}{'_filtered' if self.filtered else ''}"


@dataclass(frozen=True)
class LabConfig:
    """Everything that decides the lab's results (its hash guards --resume of an output folder)."""

    seed: int = 0
    quick: bool = False
    min_steps: int = 2
    max_steps: int = 4
    n_problems: int = 100
    label_problems: int = 150
    eval_problems: int = 60
    rollouts: int = 4
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16)
    strategies: tuple[str, ...] = STRATEGIES
    max_tokens: int = 64
    temperature: float = 0.7
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


def _policies(seed: int, quick: bool) -> dict[str, tuple[PolicySpec, PolicySpec]]:
    if quick:
        base = dict(hidden=32, layers=1, heads=4, steps=40, batch=32, train_problems=1000, warmup=10)
        return {d: (PolicySpec(task=d, seed=seed, **base), PolicySpec(task=d, seed=seed + 1, **{**base, "hidden": 24}))
                for d in DOMAINS}
    return {
        # Measured (100 test problems, temperature 0.7; benchmarks/README.md): math h64 x 2 layers
        # reaches 0.04 single-sample accuracy after 600 steps and 1.00 after 1000; code 0.26 after
        # 600. 750 math steps is an unmeasured guess inside the 15-85% window.
        "lab_math": (PolicySpec(task="lab_math", hidden=64, layers=2, steps=750, seed=seed),
                     PolicySpec(task="lab_math", hidden=48, layers=2, steps=750, seed=seed + 1)),
        "lab_code": (PolicySpec(task="lab_code", hidden=64, layers=2, steps=600, seed=seed),
                     PolicySpec(task="lab_code", hidden=48, layers=2, steps=600, seed=seed + 1)),
    }


def lab_config(seed: int = 0, quick: bool = False) -> LabConfig:
    """The full (default) or quick preset for `seed`."""
    prms = tuple(PRMSpec(domain=d, backbone=b) for d in DOMAINS for b in (0, 1))
    prms += tuple(PRMSpec(domain=d, backbone=0, filtered=True) for d in DOMAINS)
    cfg = LabConfig(seed=seed, quick=quick, policies=_policies(seed, quick), prms=prms)
    if quick:
        cfg = replace(cfg, n_problems=6, label_problems=6, eval_problems=4, rollouts=2, budgets=(1, 2, 4), max_tokens=48,
                      prms=tuple(replace(p, steps=10, batch=8) for p in prms))
    return cfg
