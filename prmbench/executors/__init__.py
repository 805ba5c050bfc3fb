"""Executors: where a run's work units (prmbench.units) are solved.

Both take the same units and hand back the same outputs: `execute(units, concurrency, emit,
unit_done)` calls `emit(unit, output)` for each cell's records of a unit, a task's units in
order, and `unit_done(unit)` once a unit is complete. The runner (the driver) alone writes the run
folder.

- `LocalExecutor`: this process; a task is one unit, its outputs streamed as they are graded.
- `RayExecutor` (prmbench.executors.ray_executor, extra `prmbench[ray]`): Ray actors that each
  own a policy and the reward models, chunks of problems as units, retries on lost workers.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Mapping, Protocol, Sequence

from prmbench.units import CellOutput, Unit, UnitSolver

Emit = Callable[[Unit, CellOutput], None]
UnitDone = Callable[[Unit], None]


class Executor(Protocol):
    """What the runner needs of an executor."""

    def describe(self, concurrency: int) -> dict[str, Any]:
        """run.json's `executor` section: the executor, its settings and the resources it had."""

    def unit_size(self, concurrency: int, kind: str) -> int | None:
        """Problems (items) per unit of a task of `kind` (None: one unit per task)."""

    def execute(self, units: Sequence[Unit], concurrency: int, emit: Emit, unit_done: UnitDone) -> None:
        """Solve every unit (see module docstring)."""

    def close(self) -> None:
        """Release what the executor holds."""


class LocalExecutor:
    """Solves units in this process, one after the other, streaming each graded chunk."""

    def __init__(self, solver: UnitSolver, cache: Any = None):
        self.solver = solver
        self.cache = cache  # closed with the executor

    def describe(self, concurrency: int) -> dict[str, Any]:
        """See `Executor.describe`."""
        return {"executor": "local"}

    def unit_size(self, concurrency: int, kind: str) -> int | None:
        """One unit per task: the pool of every problem is drawn before the first cell runs."""
        return None

    def execute(self, units: Sequence[Unit], concurrency: int, emit: Emit, unit_done: UnitDone) -> None:
        """See `Executor.execute`."""
        self.solver.concurrency = concurrency
        for unit in units:
            for out in self.solver.solve(unit):
                emit(unit, out)
            unit_done(unit)

    def close(self) -> None:
        """Close the run's cache."""
        if self.cache is not None:
            self.cache.close()


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """`--executor` and the `--ray-*` flags (defaults from prmbench.config.ExecutorConfig)."""
    from prmbench.config import ExecutorConfig

    X = ExecutorConfig.default
    p.add_argument("--executor", metavar="NAME", help=f"where the work runs: local (this process, default "
                   f"{X('executor')!r}) | ray (Ray actors, pip install 'prmbench[ray]'; same output, resumable on either)")
    p.add_argument("--ray-address", dest="ray_address", metavar="ADDR",
                   help="Ray cluster to join: auto (the one this node belongs to), HOST:6379 or ray://HOST:10001 "
                        "(default: Ray's choice: $RAY_ADDRESS, a cluster started on this node, else a new local instance)")
    p.add_argument("--ray-workers", type=int, dest="ray_workers", metavar="N",
                   help="worker actors, each owning its own models (default: the cluster's GPUs divided by "
                        "--ray-gpus-per-worker; 1 on a cluster without GPUs)")
    p.add_argument("--ray-gpus-per-worker", type=float, dest="ray_gpus_per_worker", metavar="G",
                   help="GPUs per worker, e.g. 1, 2 (tensor parallel) or 0.5 (default: 1 on a cluster with GPUs, else 0)")
    p.add_argument("--ray-unit-size", type=int, dest="ray_unit_size", metavar="P",
                   help="run: problems per work unit, every cell of the chunk on one worker (default: max(8, "
                        "--concurrency); step-level tasks: 64 solutions); label: ignored (units are its chunks of 16)")
    p.add_argument("--ray-max-attempts", type=int, dest="ray_max_attempts", metavar="A",
                   help=f"a unit that fails or loses its worker this often fails the job (default {X('ray_max_attempts')})")


def executor_config(args: argparse.Namespace, config: Mapping[str, Any] | None = None) -> Any:
    """The ExecutorConfig of the parsed flags, over `config` (the --config YAML keys; flags win)."""
    from prmbench.config import EXECUTOR_OPTIONS, ExecutorConfig

    cfg = config or {}
    return ExecutorConfig.from_options({k: v if (v := getattr(args, k, None)) is not None else cfg.get(k)
                                        for k in EXECUTOR_OPTIONS})
