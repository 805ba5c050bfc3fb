"""`--executor ray`: work units solved by Ray actors, records written by the driver.

Each worker is a Ray actor (1 CPU, `--ray-gpus-per-worker` GPUs) that rebuilds the run's
components from its config (`prmbench.units.build_components`, plugins loaded through entry
points and `--include-path` presets, as on the driver) and solves whole units: one task's chunk
of `--ray-unit-size` problems with every cell that still lacks them, so the chunk's sample pool
and cache stay on one worker, and `--concurrency` searches run at once inside the unit. The driver
hands out units as workers free up, keeps finished ones until every earlier unit of their task is
in, and writes them (prmbench.runner.CellFiles), so every cell's samples file grows in problem
order exactly as on the local executor.

The run's cache (`cache.sqlite` in the run folder) is served by a cache actor pinned to the
driver's node: workers read and write it as they compute, so a unit interrupted by a lost worker
keeps its generations and scores, the unit's retry reuses them, and a later `--resume` (on either
executor) or a new cell finds them.

Faults: a worker that dies (process killed, out of memory, node lost) is replaced by a fresh actor
and its unit is queued again; nothing written is touched. A unit that fails `--ray-max-attempts`
times (its worker lost, or an error raised in it) fails the run with the worker's error. User
errors raised on a worker (a component name the worker cannot resolve, a missing model) fail the
run at once, as they would locally (exit 2).
"""

from __future__ import annotations

import os
import socket
import sys
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from prmbench import __version__
from prmbench.cache import Cache
from prmbench.config import ExecutorConfig
from prmbench.errors import ConfigError, PrmbenchError
from prmbench.step_runner import SCORE_CHUNK
from prmbench.units import (GRADE_CHUNK, SEARCH_UNIT, STEP_UNIT, CellOutput, PolicyFacts, Unit, UnitSolver,
                            build_components)

RAY_EXTRA = "prmbench[ray]"
#: Environment variables the workers inherit from the driver (data and model folders, offline mode, threads).
ENV_PREFIXES = ("PRMBENCH_", "HF_", "TRANSFORMERS_", "HUGGINGFACE_")
ENV_NAMES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM")
_WAIT_SECONDS = 1.0
"""How long the driver waits for a unit before looking again (Ctrl-C is handled in between)."""


class RayWorkerLost(PrmbenchError):
    """A unit whose workers died `--ray-max-attempts` times."""


def import_ray() -> Any:
    """The `ray` module, or a ConfigError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: pip install '{RAY_EXTRA}' "
                          f"(or run with --executor local)") from None
    return ray


def worker_env() -> dict[str, str]:
    """The driver's environment variables that workers get too."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def check_reachable(address: str | None) -> None:
    """A HOST:PORT (or ray://HOST:PORT) address that refuses connections is a ConfigError at once
    (Ray itself would retry for minutes); `auto` and no address are left to Ray."""
    if not address or address in ("auto", "local") or ":" not in address:
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise ConfigError(f"cannot reach the Ray cluster at --ray-address {address} ({why}); start it there with "
                          f"`ray start --head`, or pass --ray-address auto on a node of the cluster") from None


class CacheStore:
    """The cache actor's body: the run's cache file, opened on the driver's node."""

    def __init__(self, path: str):
        self.cache = Cache(Path(path))

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """See `Cache.get_many`."""
        return self.cache.get_many(keys)

    def put_many(self, items: dict[str, Any]) -> None:
        """See `Cache.put_many`."""
        self.cache.put_many(items)

    def size(self) -> int:
        """Entries stored."""
        return len(self.cache)

    def close(self) -> None:
        """Close the file."""
        self.cache.close()


class RemoteCache:
    """A worker's handle on the run's cache (the cache actor), with `Cache`'s methods."""

    def __init__(self, store: Any):
        self.store = store

    def get_many(self, keys: Any) -> dict[str, Any]:
        """See `Cache.get_many`."""
        import ray

        return ray.get(self.store.get_many.remote(list(keys)))  # type: ignore[no-any-return]

    def get(self, key: str) -> Any | None:
        """See `Cache.get`."""
        return self.get_many([key]).get(key)

    def put_many(self, items: Any) -> None:
        """See `Cache.put_many`."""
        import ray

        ray.get(self.store.put_many.remote(dict(items)))

    def close(self) -> None:
        """Nothing to close: the driver closes the store."""


class WorkerBase:
    """A worker actor's body: what it solves is built on first use from the driver's payload."""

    def __init__(self, payload: Any, driver_version: str, store: Any):
        self.payload = payload
        self.driver_version = driver_version
        self.cache = RemoteCache(store)
        self.solver: Any = None

    @property
    def where(self) -> str:
        """`Ray worker on HOST`, for messages."""
        return f"Ray worker on {socket.gethostname()}"

    def _solver(self) -> Any:
        if self.solver is None:
            from prmbench.plugins import build_registry

            if __version__ != self.driver_version:
                raise ConfigError(f"the {self.where} has prmbench {__version__}, the driver {self.driver_version}; "
                                  f"install the same prmbench on every node")
            registry = build_registry(include_paths=self.payload.include_paths)
            try:
                self.solver = self.build(registry)
            except ConfigError as e:
                hint = (" (components registered in the driver's process do not reach workers: ship them as a plugin "
                        "entry point or an --include-path preset)") if str(e).startswith("unknown ") else ""
                raise ConfigError(f"{self.where}: {e}{hint}") from None
        return self.solver

    def build(self, registry: Any) -> Any:
        """The solver of this worker's units, from the payload and a fresh registry."""
        raise NotImplementedError

    def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()

    def solve(self, unit: Any, concurrency: int) -> list[Any]:
        """The unit's outputs, in order."""
        raise NotImplementedError

    def close(self) -> None:
        """Close what the solver holds (models; managed servers stop)."""
        if self.solver is not None:
            self.solver.close()


class RunWorker(WorkerBase):
    """Solves a run's units (payload: its RunConfig) with components of its own."""

    def build(self, registry: Any) -> UnitSolver:
        """A UnitSolver over the run's components."""
        return UnitSolver(self.payload, build_components(self.payload, registry), self.cache, concurrency=1,
                          log=lambda msg: print(msg, file=sys.stderr, flush=True))

    def policy_facts(self) -> PolicyFacts:
        """What the driver needs of the policy (it builds none itself)."""
        policy = self._solver().components.policy
        assert policy is not None
        return PolicyFacts.of(policy)

    def solve(self, unit: Unit, concurrency: int) -> list[CellOutput]:
        """Every cell's records of `unit` (see `UnitSolver.solve_all`)."""
        solver = self._solver()
        solver.concurrency = concurrency
        return solver.solve_all(unit)


class LabelWorker(WorkerBase):
    """Labels `prmbench label` units (payload: its LabelSpec) with annotator policies of its own."""

    def build(self, registry: Any) -> Any:
        """A LabelSolver over the spec's task and policies."""
        from prmbench.labels.labelling import LabelSolver

        return LabelSolver(self.payload, registry, self.cache)

    def identities(self) -> list[dict[str, Any]]:
        """The annotators' identities (the driver builds no policy)."""
        return self._solver().identities()  # type: ignore[no-any-return]

    def solve(self, unit: Any, concurrency: int) -> list[Any]:
        """The unit's rows (one LabelOutput)."""
        return [self._solver().solve(unit)]


class RayExecutor:
    """Solves units on Ray actors (see module docstring)."""

    after_unit: ClassVar[Callable[["RayExecutor", Any], None] | None] = None
    """Called after each unit was written, once the next unit went out (tests interrupt here)."""
    after_dispatch: ClassVar[Callable[["RayExecutor", Any, Any], None] | None] = None
    """Called with (executor, worker, unit) right after a unit went to a worker (tests kill workers here)."""

    def __init__(self, config: ExecutorConfig, payload: Any, cache_path: Path, worker: type[WorkerBase] = RunWorker,
                 log: Callable[[str], None] | None = None):
        self.config = config
        self.payload = payload  # what workers build their solver from (a RunConfig for RunWorker)
        self.cache_path = Path(cache_path)
        self.worker = worker
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.ray: Any = None
        self.owns_ray = False
        self.workers: list[Any] = []
        self.inflight: dict[Any, tuple[Any, Unit]] = {}  # object ref -> (worker, unit)
        self.store: Any = None
        self.gpus_per_worker = 0.0
        self.replaced = 0  # workers lost and replaced

    # -- set-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Join (or start) the Ray cluster; create the cache actor and the workers."""
        ray = self.ray = import_ray()
        check_reachable(self.config.ray_address)
        if not ray.is_initialized():
            try:
                ray.init(address=self.config.ray_address, include_dashboard=False,
                         runtime_env={"env_vars": worker_env()})
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = self.config.ray_address or os.environ.get("RAY_ADDRESS") or "a new local instance"
                raise ConfigError(f"cannot start or join the Ray cluster ({where}): {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                                  f"start one with `ray start --head` and pass --ray-address auto (or HOST:6379)") from None
            self.owns_ray = True
        res = ray.cluster_resources()
        gpus, cpus = float(res.get("GPU", 0)), float(res.get("CPU", 0))
        g = self.config.ray_gpus_per_worker
        g = (1.0 if gpus else 0.0) if g is None else float(g)
        n = self.config.ray_workers or (int(gpus // g) if g else 1)
        if n < 1 or n * g > gpus or n > cpus:
            raise ConfigError(f"--ray-workers {n} x --ray-gpus-per-worker {g:g} (and 1 CPU each) do not fit the Ray "
                              f"cluster's {gpus:g} GPUs and {cpus:g} CPUs; ask for fewer workers or GPUs per worker")
        self.gpus_per_worker = g
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        self.store = ray.remote(CacheStore).options(num_cpus=0, scheduling_strategy=here).remote(
            str(self.cache_path))
        self.workers = [self._new_worker() for _ in range(n)]
        self.log(f"ray: {n} worker(s), {g:g} GPU(s) each, on a cluster of {cpus:g} CPUs and {gpus:g} GPUs")

    def _new_worker(self) -> Any:
        # max_concurrency 2: `pid` answers while a unit is being solved (the driver sends one unit at a time)
        return self.ray.remote(self.worker).options(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=0, max_concurrency=2,
                                               runtime_env={"env_vars": worker_env()}).remote(
            self.payload, __version__, self.store)

    def ask(self, method: str) -> Any:
        """The first worker's answer to `method()` (e.g. RunWorker.policy_facts: the driver loads no policy)."""
        return self._get(getattr(self.workers[0], method).remote())

    def _get(self, ref: Any) -> Any:
        """`ray.get`, with a worker's user error raised as itself (exit 2)."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, PrmbenchError):
                raise e.cause from None
            raise

    def unit_size(self, concurrency: int, kind: str = SEARCH_UNIT) -> int:
        """--ray-unit-size, else enough problems for `concurrency` searches at once (at least
        GRADE_CHUNK); step-level units: one scoring chunk (SCORE_CHUNK solutions)."""
        if self.config.ray_unit_size:
            return self.config.ray_unit_size
        return SCORE_CHUNK if kind == STEP_UNIT else max(GRADE_CHUNK, concurrency)

    def describe(self, concurrency: int) -> dict[str, Any]:
        """run.json's `executor` section: settings, and the cluster's resources when the run started."""
        ray = self.ray
        res = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {"executor": "ray", "address": self.config.ray_address, "workers": len(self.workers),
                "gpus_per_worker": self.gpus_per_worker, "cpus_per_worker": 1, "unit_size": self.unit_size(concurrency),
                "max_attempts": self.config.ray_max_attempts, "ray_version": ray.__version__,
                "cluster": {"nodes": len(nodes), "CPU": res.get("CPU", 0), "GPU": res.get("GPU", 0),
                            "memory_bytes": res.get("memory", 0),
                            "accelerators": sorted(k for k in res if k.startswith("accelerator_type:"))}}

    # -- execution ------------------------------------------------------------------------------
    def execute(self, units: Sequence[Unit], concurrency: int, emit: Callable[[Unit, CellOutput], None],
                unit_done: Callable[[Unit], None]) -> None:
        """Hand units to free workers; write each task's units in order as they come back."""
        ray = self.ray
        lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError)
        pending: deque[Unit] = deque(units)
        order: dict[str, deque[Unit]] = {}
        for u in units:
            order.setdefault(u.task, deque()).append(u)
        held: dict[tuple[str, int], list[CellOutput]] = {}
        attempts: Counter[tuple[str, int]] = Counter()
        idle = list(self.workers)

        def dispatch() -> None:
            while idle and pending:
                worker, unit = idle.pop(0), pending.popleft()
                self.inflight[worker.solve.remote(unit, concurrency)] = (worker, unit)
                if type(self).after_dispatch is not None:
                    type(self).after_dispatch(self, worker, unit)  # type: ignore[misc]

        def retry(unit: Unit, why: str, error: BaseException) -> None:
            key = (unit.task, unit.index)
            attempts[key] += 1
            if attempts[key] >= self.config.ray_max_attempts:
                if isinstance(error, RayWorkerLost):
                    raise error
                error.add_note(f"prmbench: unit {unit.name} failed {attempts[key]} times on Ray workers "
                               f"(--ray-max-attempts {self.config.ray_max_attempts})")
                raise error
            self.log(f"ray: unit {unit.name} {why}; retrying (attempt {attempts[key] + 1} of "
                     f"{self.config.ray_max_attempts})")
            pending.appendleft(unit)

        while pending or self.inflight:
            dispatch()
            ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=_WAIT_SECONDS)
            delivered = []
            for ref in ready:
                worker, unit = self.inflight.pop(ref)
                try:
                    outs = ray.get(ref)
                except lost as e:
                    if getattr(e, "actor_init_failed", False):  # the worker could not even start: no retry helps
                        raise ConfigError(f"a Ray worker failed to start: {str(e).splitlines()[0][:500]}; check that "
                                          f"every node has the same prmbench and dependencies installed") from None
                    self._replace(worker, idle)
                    retry(unit, f"lost its worker ({type(e).__name__})",
                          RayWorkerLost(f"unit {unit.name} lost its Ray worker {self.config.ray_max_attempts} times "
                                        f"(last: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                        f"check the workers' memory and logs (`ray logs`), or lower --concurrency"))
                    continue
                except ray.exceptions.RayTaskError as e:
                    idle.append(worker)
                    if isinstance(e.cause, PrmbenchError):  # a user error: the same on every worker
                        raise e.cause from None
                    retry(unit, f"failed ({type(e.cause).__name__}: {e.cause})", e.cause or e)
                    continue
                idle.append(worker)
                held[(unit.task, unit.index)] = outs
                queue = order[unit.task]
                while queue and (queue[0].task, queue[0].index) in held:
                    first = queue.popleft()
                    for out in held.pop((first.task, first.index)):
                        emit(first, out)
                    unit_done(first)
                    delivered.append(first)
            dispatch()
            hook = type(self).after_unit
            for unit in delivered:
                if hook is not None:
                    hook(self, unit)

    def _replace(self, worker: Any, idle: list[Any]) -> None:
        """Swap a lost worker for a fresh actor (scheduled wherever the cluster has room)."""
        self.ray.kill(worker, no_restart=True)
        fresh = self._new_worker()
        self.workers[self.workers.index(worker)] = fresh
        idle.append(fresh)
        self.replaced += 1

    def close(self) -> None:
        """Stop the workers (their components first), close the cache, leave a Ray we started."""
        ray = self.ray
        if ray is None or not ray.is_initialized():  # (a Ray API call would start a local instance)
            return
        try:
            # `close` runs beside a unit still in flight (2 threads per actor): components close, managed
            # servers stop; then the actors go (a unit cut short keeps what it wrote to the cache)
            closing = [w.close.remote() for w in self.workers]
            if closing:
                ray.wait(closing, num_returns=len(closing), timeout=10 if self.inflight else 60)
            for w in self.workers:
                ray.kill(w, no_restart=True)
            if self.store is not None:
                try:
                    ray.get(self.store.close.remote(), timeout=60)
                finally:
                    ray.kill(self.store, no_restart=True)
        finally:
            self.inflight.clear()
            if self.owns_ray:
                ray.shutdown()
