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

from typing import Any, Callable, Protocol, Sequence

from prmbench.units import CellOutput, Unit, UnitSolver

Emit = Callable[[Unit, CellOutput], None]
UnitDone = Callable[[Unit], None]


class Executor(Protocol):
    """What the runner needs of an executor."""

    def describe(self, concurrency: int) -> dict[str, Any]:
        """run.json's `executor` section: the executor, its settings and the resources it had."""

    def unit_size(self, concurrency: int) -> int | None:
        """Problems per unit (None: one unit per task)."""

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

    def unit_size(self, concurrency: int) -> int | None:
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
