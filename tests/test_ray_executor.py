"""`--executor ray` on a real local Ray cluster (2 CPUs): the records of the local executor, a
worker killed mid-run, resume across executors, the run's cache, step-level tasks, the missing
extra and components the workers cannot rebuild."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")  # the dev extra brings Ray; without it only the missing-extra test applies

from prmbench.cli import main  # noqa: E402
from prmbench.config import ExecutorConfig  # noqa: E402
from prmbench.executors.ray_executor import RayExecutor, WorkerBase  # noqa: E402
from prmbench.plugins import build_registry  # noqa: E402
from prmbench.results import load_run  # noqa: E402
from prmbench.runner import RunSpec, Runner  # noqa: E402
from prmbench.testing.synthetic import SyntheticPolicy  # noqa: E402

RAY2 = ExecutorConfig(executor="ray", ray_workers=2, ray_unit_size=2)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One local Ray instance for the module: 2 CPUs, a small object store, no dashboard."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 * 1024, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def no_hook(monkeypatch):
    monkeypatch.setattr(RayExecutor, "after_unit", None)
    monkeypatch.setattr(RayExecutor, "after_dispatch", None)


class Killer:
    """Kills worker processes with SIGKILL (as a lost node or the OOM killer would) right after a
    unit went to them: `when(dispatch_number, unit)` picks the dispatches. Pids are asked of each
    worker on its first dispatch (the actor answers `pid` beside a unit in flight)."""

    def __init__(self, when):
        self.when = when
        self.dispatches = 0
        self.killed: list[str] = []
        self.pids: dict[Any, int] = {}

    def __call__(self, executor: RayExecutor, worker, unit) -> None:
        self.dispatches += 1
        if worker not in self.pids:
            self.pids[worker] = ray.get(worker.pid.remote(), timeout=60)
        if self.when(self.dispatches, unit):
            os.kill(self.pids[worker], signal.SIGKILL)
            self.killed.append(unit.name)
            self.executor = executor


def comparable(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Records by cell, in file order, without the measured wall-clock fields."""
    out = {}
    for f in sorted((run_dir / "cells").glob("*/samples.jsonl")):
        lines = [json.loads(x) for x in f.read_text().splitlines()]
        for r in lines:
            r.get("info", {}).pop("wall_seconds", None)
            r.get("spend", {}).pop("seconds", None)
            r.pop("rm_seconds", None)
        out[f.parent.name] = lines
    return out


def trees(run_dir: Path) -> dict[str, str]:
    return {f.parent.name: f.read_text() for f in sorted((run_dir / "cells").glob("*/trees.jsonl"))}


def metrics(run_dir: Path) -> dict[str, dict[str, Any]]:
    drop = ("seconds", "rm_seconds", "mean_seconds", "wall_seconds")
    return {f.parent.name: {k: v for k, v in json.loads(f.read_text()).items() if "seconds" not in k and k not in drop}
            for f in sorted((run_dir / "cells").glob("*/metrics.json"))}


def cache_rows(run_dir: Path) -> dict[str, Any]:
    """The run cache's entries, without measured seconds."""
    with sqlite3.connect(run_dir / "cache.sqlite") as db:
        rows = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM kv")}
    for v in rows.values():
        if isinstance(v, dict):
            v.pop("seconds", None)
    return rows


def synthetic_spec(limit: int = 8) -> RunSpec:
    return RunSpec(tasks=("synthetic",), rms=("synthetic_prm", "random"), strategies=("best_of_n", "beam_search", "mcts"),
                   budgets=(4,), policy="synthetic", limit=limit, seed=5)


@pytest.fixture(scope="module")
def synthetic_local(tmp_path_factory):
    """The reference: the synthetic matrix on the local executor."""
    return Runner(synthetic_spec(), build_registry(strict=True), tmp_path_factory.mktemp("loc") / "run",
                  log=lambda m: None).run()


# -- the records of the local executor ---------------------------------------------------------
@pytest.mark.slow
def test_tiny_model_matrix_on_two_workers_gives_the_local_records(tmp_path, tiny_model_dir, tiny_rm_dirs,
                                                                   shared_data_dir, capsys):
    """A new user's matrix: the real hf policy (tiny Qwen2), oracle, random and a tiny
    Qwen2.5-Math-PRM, pool and step-wise strategies, through the CLI on both executors."""
    args = ["run", "--tasks", "math500", "--policy", f"hf:{tiny_model_dir}",
            "--rm", f"oracle,random,qwen_prm:{tiny_rm_dirs['qwen_prm']}", "--strategy", "best_of_n,beam_search",
            "--budget", "4", "--limit", "4", "--max-tokens", "12",
            "--data-file", f"math500={shared_data_dir / 'math500' / 'test.jsonl'}"]
    assert main([*args, "--output", str(tmp_path / "local")]) == 0
    assert main([*args, "--output", str(tmp_path / "ray"), "--executor", "ray", "--ray-workers", "2",
                 "--ray-unit-size", "2", "--ray-gpus-per-worker", "0"]) == 0
    local, remote = comparable(tmp_path / "local"), comparable(tmp_path / "ray")
    assert len(local) == 6 and all(len(recs) == 4 for recs in local.values())
    assert remote == local
    assert trees(tmp_path / "ray") == trees(tmp_path / "local") != {}
    assert metrics(tmp_path / "ray") == metrics(tmp_path / "local")
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["status"] == "complete"
    ex = run["executor"]
    assert load_run(tmp_path / "ray").info.executor == ex
    assert (ex["executor"], ex["workers"], ex["gpus_per_worker"], ex["unit_size"]) == ("ray", 2, 0.0, 2)
    assert ex["cluster"]["CPU"] == 2 and ex["cluster"]["nodes"] == 1
    assert json.loads((tmp_path / "local" / "run.json").read_text())["executor"] == {"executor": "local"}
    # the workers' cache entries reached the run's cache: the same entries a local run stores
    assert cache_rows(tmp_path / "ray") == cache_rows(tmp_path / "local")


def test_step_level_tasks_run_through_the_executor(tmp_path, shared_data_dir):
    spec = RunSpec(tasks=("prm800k_test", "synthetic"), rms=("random", "synthetic_prm"), strategies=("best_of_n",),
                   budgets=(2,), policy="synthetic", limit=10)
    reg = build_registry(strict=True)
    local = Runner(spec, reg, tmp_path / "local", log=lambda m: None).run()
    remote = Runner(spec, reg, tmp_path / "ray", log=lambda m: None,
                    executor=ExecutorConfig(executor="ray", ray_workers=2, ray_unit_size=3)).run()
    a = comparable(local)
    assert sorted(a) == ["prm800k_test--random", "prm800k_test--synthetic_prm",
                         "synthetic--random--best_of_n--n2", "synthetic--synthetic_prm--best_of_n--n2"]
    assert all(len(recs) == 10 for recs in a.values())
    assert comparable(remote) == a
    assert metrics(remote) == metrics(local)


def _label_rows(path: Path) -> list[dict[str, Any]]:
    """A label file's rows without measured seconds."""
    def strip(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != "seconds"}
        return [strip(x) for x in o] if isinstance(o, list) else o

    return [strip(json.loads(line)) for line in path.read_text().splitlines()]


def test_label_runs_through_the_executor_and_resumes_across_executors(tmp_path, capsys):
    args = ["label", "--task", "synthetic", "--policy", "synthetic", "--rollouts", "3", "--solutions", "2",
            "--limit", "12", "--search", "binary"]
    ray_flags = ["--executor", "ray", "--ray-workers", "2"]
    assert main([*args, "--output", str(tmp_path / "local.jsonl")]) == 0
    assert main([*args, "--output", str(tmp_path / "ray.jsonl"), *ray_flags]) == 0
    want = _label_rows(tmp_path / "local.jsonl")
    assert len(want) == 24 and _label_rows(tmp_path / "ray.jsonl") == want
    meta = json.loads((tmp_path / "ray.meta.json").read_text())
    assert meta["status"] == "complete" and meta["executor"]["executor"] == "ray"
    assert meta["annotators"] == json.loads((tmp_path / "local.meta.json").read_text())["annotators"]
    # a local labelling cut after 10 rows (as an interruption leaves it) finishes on Ray
    part = tmp_path / "part.jsonl"
    assert main([*args, "--output", str(part)]) == 0
    part.write_text("".join(part.read_text().splitlines(keepends=True)[:10]))
    assert main([*args, "--output", str(part), "--resume", *ray_flags]) == 0
    assert _label_rows(part) == want
    # stored solutions (--samples): the driver reads them, workers label chunks of 16
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"problem_id": r["problem_id"], "completion": r["text"]}) + "\n"
                               for r in want))
    stored = ["label", "--task", "synthetic", "--policy", "synthetic", "--rollouts", "2", "--samples", str(samples)]
    assert main([*stored, "--output", str(tmp_path / "s_local.jsonl")]) == 0
    assert main([*stored, "--output", str(tmp_path / "s_ray.jsonl"), *ray_flags]) == 0
    from_file = _label_rows(tmp_path / "s_local.jsonl")
    assert len(from_file) == 24 and _label_rows(tmp_path / "s_ray.jsonl") == from_file


# -- faults -------------------------------------------------------------------------------------
def test_a_worker_killed_mid_run_is_replaced_and_the_records_are_those_of_the_local_run(tmp_path, synthetic_local,
                                                                                         monkeypatch):
    out = tmp_path / "run"
    written: dict[str, str] = {}

    def third_unit(n: int, unit) -> bool:  # the first unit is written by then: keep what it wrote
        if n == 3:
            written.update({f.parent.name: f.read_text() for f in (out / "cells").glob("*/samples.jsonl")})
        return n == 3

    killer = Killer(third_unit)
    monkeypatch.setattr(RayExecutor, "after_dispatch", killer)
    logs: list[str] = []
    Runner(synthetic_spec(), build_registry(strict=True), out, log=logs.append, executor=RAY2).run()
    assert len(killer.killed) == 1 and killer.executor.replaced == 1 and len(killer.executor.workers) == 2
    assert any(f"unit {killer.killed[0]} lost its worker" in m and "retrying" in m for m in logs), logs
    assert written and all(text for text in written.values())
    assert comparable(out) == comparable(synthetic_local)
    for cell, text in written.items():  # nothing finished was rewritten or lost
        assert (out / "cells" / cell / "samples.jsonl").read_text().startswith(text)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_a_unit_that_keeps_losing_its_worker_fails_the_run_with_the_reason(tmp_path, monkeypatch, capsys):
    killer = Killer(lambda n, unit: unit.index == 1)  # every worker that takes unit synthetic#1 dies
    monkeypatch.setattr(RayExecutor, "after_dispatch", killer)
    out = tmp_path / "run"
    code = main(["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "synthetic_prm", "--strategy",
                 "best_of_n", "--budget", "2", "--limit", "6", "--output", str(out), "--executor", "ray",
                 "--ray-workers", "2", "--ray-unit-size", "2", "--ray-max-attempts", "2"])
    err = capsys.readouterr().err
    assert code == 2 and killer.killed == ["synthetic#1", "synthetic#1"]
    assert "prmbench: error: unit synthetic#1 lost its Ray worker 2 times" in err
    assert "Traceback" not in err
    assert json.loads((out / "run.json").read_text())["status"] == "failed: RayWorkerLost"
    # the unit before it is written; nothing after it is (records stay in problem order)
    assert [len(f.read_text().splitlines()) for f in (out / "cells").glob("*/samples.jsonl")] == [2]


def test_a_component_registered_only_in_the_driver_is_a_clear_error(tmp_path, capsys):
    from prmbench.errors import ConfigError
    from prmbench.registry import Entry

    class MyPolicy(SyntheticPolicy):
        """A test policy added to the driver's registry only."""

    reg = build_registry(strict=True)
    reg.add(Entry(kind="policy", name="my_policy", origin="test", factory=MyPolicy, target=None))
    spec = RunSpec(tasks=("synthetic",), rms=("random",), strategies=("best_of_n",), budgets=(2,), policy="my_policy",
                   limit=2)
    with pytest.raises(ConfigError, match=r"Ray worker on .*unknown policy 'my_policy'.*plugin entry point"):
        Runner(spec, reg, tmp_path / "run", log=lambda m: None, executor=RAY2).run()


# -- resume across executors and the cache -----------------------------------------------------
def _truncate(run_dir: Path, keep: int) -> None:
    """As an interrupted run leaves it: every cell holds only its first `keep` records."""
    for f in (run_dir / "cells").glob("*/samples.jsonl"):
        f.write_text("".join(f.read_text().splitlines(keepends=True)[:keep]))


def test_a_local_run_resumes_on_ray_and_a_ray_run_resumes_locally(tmp_path, synthetic_local, monkeypatch):
    reg = build_registry(strict=True)
    want = comparable(synthetic_local)
    # started locally (interrupted after 3 problems of every cell), finished on Ray
    shutil.copytree(synthetic_local, tmp_path / "a")
    _truncate(tmp_path / "a", 3)
    Runner(synthetic_spec(), reg, tmp_path / "a", resume=True, log=lambda m: None, executor=RAY2).run()
    assert comparable(tmp_path / "a") == want
    assert json.loads((tmp_path / "a" / "run.json").read_text())["executor"]["executor"] == "ray"
    # started on Ray, interrupted (Ctrl-C) once the first unit is written, finished locally
    def interrupt(executor: RayExecutor, unit) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(RayExecutor, "after_unit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        Runner(synthetic_spec(), reg, tmp_path / "b", log=lambda m: None, executor=RAY2).run()
    assert json.loads((tmp_path / "b" / "run.json").read_text())["status"] == "interrupted"
    partial = comparable(tmp_path / "b")
    assert partial and all(len(v) < 8 for v in partial.values())
    # the workers' cache entries are in the run's cache: the local resume draws only what none of them drew
    before = cache_rows(tmp_path / "b")
    full = cache_rows(synthetic_local)
    assert before and all(full[k] == v for k, v in before.items())
    calls: list[int] = []
    real = SyntheticPolicy.generate

    def counting(self, requests, problem_ids=None):  # type: ignore[no-untyped-def]
        calls.append(sum(r.n for r in requests))
        return real(self, requests, problem_ids)

    monkeypatch.setattr(SyntheticPolicy, "generate", counting)
    Runner(synthetic_spec(), reg, tmp_path / "b", resume=True, log=lambda m: None).run()
    assert comparable(tmp_path / "b") == want
    assert cache_rows(tmp_path / "b") == full
    assert 0 < sum(calls) <= len(full) - len(before)


# -- configuration ------------------------------------------------------------------------------
def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "random", "--strategy", "best_of_n",
                 "--budget", "2", "--limit", "2", "--output", str(tmp_path / "run"), "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'prmbench[ray]'" in err and "Traceback" not in err


@pytest.mark.parametrize("flags, message", [
    (["--executor", "spark"], "--executor must be one of local, ray"),
    (["--ray-workers", "2"], "--ray-workers only apply to --executor ray"),
    (["--executor", "ray", "--ray-workers", "0"], "--ray-workers must be a positive integer"),
    (["--executor", "ray", "--ray-workers", "3"], "do not fit the Ray cluster's 0 GPUs and 2 CPUs"),
    (["--executor", "ray", "--ray-gpus-per-worker", "1"], "do not fit the Ray cluster"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster at --ray-address 127.0.0.1:1"),
])
def test_bad_executor_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    code = main(["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "random", "--strategy", "best_of_n",
                 "--budget", "2", "--limit", "2", "--output", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_executor_settings_are_not_part_of_the_config_hash(tmp_path):
    """So a run may resume on the other executor (README "Running on a Ray cluster")."""
    from prmbench.cli import build_executor, build_parser, build_run

    base = ["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "random", "--strategy", "best_of_n",
            "--budget", "2"]
    a = build_parser().parse_args(base)
    b = build_parser().parse_args([*base, "--executor", "ray", "--ray-workers", "4", "--ray-gpus-per-worker", "0.5"])
    assert build_run(a)[0].hash() == build_run(b)[0].hash()
    assert build_executor(b) == ExecutorConfig(executor="ray", ray_workers=4, ray_gpus_per_worker=0.5)
    yaml_cfg = tmp_path / "c.yaml"
    yaml_cfg.write_text("executor: ray\nray_unit_size: 4\n")
    c = build_parser().parse_args([*base, "--config", str(yaml_cfg), "--ray-workers", "2"])
    assert build_executor(c) == ExecutorConfig(executor="ray", ray_workers=2, ray_unit_size=4)


class FlakyWorker(WorkerBase):
    """A worker body whose units raise `fails` times in a row each (counted in the run's cache)."""

    def solve(self, unit, concurrency):  # type: ignore[no-untyped-def]
        key = f"attempts:{unit.name}"
        seen = (self.cache.get(key) or 0) + 1
        self.cache.put_many({key: seen})
        if seen <= self.payload["fails"]:
            raise RuntimeError(f"boom in {unit.name} (attempt {seen})")
        return [f"{unit.name} done"]


@pytest.mark.parametrize("fails, attempts", [(1, 3), (3, 3)])
def test_a_unit_whose_worker_raises_is_retried_then_fails_the_run_with_the_workers_error(tmp_path, fails, attempts):
    from prmbench.units import Unit

    executor = RayExecutor(ExecutorConfig(executor="ray", ray_workers=2, ray_max_attempts=attempts),
                           {"fails": fails, "include_paths": ()}, tmp_path / "cache.sqlite", worker=FlakyWorker,
                           log=lambda m: None)
    units = [Unit("search", "t", i, (), ()) for i in range(3)]
    got: list[str] = []
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    executor.start()
    try:
        if fails < attempts:  # retried on the next free worker until it succeeds; written in unit order
            executor.execute(units, 1, lambda u, out: got.append(out), lambda u: None)
            assert got == ["t#0 done", "t#1 done", "t#2 done"]
        else:
            with pytest.raises(RuntimeError, match=r"boom in t#\d \(attempt 3\)") as info:
                executor.execute(units, 1, lambda u, out: got.append(out), lambda u: None)
            assert any("failed 3 times on Ray workers" in n for n in info.value.__notes__)
    finally:
        executor.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_workers_that_cannot_start_fail_the_run_at_once(tmp_path):
    """An actor whose creation fails (here: its class cannot be imported on the worker, as with a
    node lacking prmbench) is not retried."""
    from prmbench.errors import ConfigError
    from prmbench.units import Unit

    executor = RayExecutor(ExecutorConfig(executor="ray", ray_workers=1), {"fails": 0, "include_paths": ()},
                           tmp_path / "cache.sqlite", worker=FlakyWorker, log=lambda m: None)
    executor.start()
    try:
        with pytest.raises(ConfigError, match="a Ray worker failed to start"):
            executor.execute([Unit("search", "t", 0, (), ())], 1, lambda u, out: None, lambda u: None)
        assert executor.replaced == 0
    finally:
        executor.close()
