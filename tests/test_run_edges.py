"""Edges of the runner, registry and plugin loading (issue 9, item 13)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from prmbench import hookimpl
from prmbench.errors import ConfigError, ModelLoadError
from prmbench.plugins import PluginLoadError, build_registry
from prmbench.registry import Entry
from prmbench.results import load_run
from prmbench.results import drop_torn_tail as _drop_torn_tail
from prmbench.runner import Cell, RunSpec, Runner
from prmbench.testing.pools import build_math500_pool

LIMIT = 4


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


@pytest.fixture()
def spec(shared_data_dir, tmp_path) -> RunSpec:
    pool = tmp_path / "pool.jsonl"
    build_math500_pool(shared_data_dir, pool, problems=LIMIT, samples=4, seed=0)
    return RunSpec(tasks=("math500",), rms=("random",), strategies=("best_of_n",), budgets=(2,),
                   policy=f"replay:{pool}", data_files={"math500": str(shared_data_dir / "math500" / "test.jsonl")})


# -- cell ids ----------------------------------------------------------------------------------
def test_cell_ids_that_sanitise_alike_stay_distinct():
    a, b = Cell("math500", "qwen_prm:org/model", "best_of_n", 4), Cell("math500", "qwen_prm_org_model", "best_of_n", 4)
    assert a.id != b.id and a.id.startswith("math500--qwen_prm_org_model--best_of_n--n4-")
    assert Cell("math500", "oracle", "best_of_n", 4).id == "math500--oracle--best_of_n--n4"  # safe names as before
    assert Cell("math500", "qwen_prm:org/model", "best_of_n", 4).id == a.id  # stable


# -- plugins -----------------------------------------------------------------------------------
class _EntryPoint:
    """An installed entry point as importlib.metadata lists it (name, value, load)."""

    def __init__(self, name: str, module: types.ModuleType):
        self.name, self.value, self.module, self.dist = name, module.__name__, module, None

    def load(self) -> types.ModuleType:
        return self.module


def _plugin(name: str, **hooks) -> types.ModuleType:  # type: ignore[no-untyped-def]
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def _registry_with(monkeypatch, *plugins: types.ModuleType, strict: bool = False):  # type: ignore[no-untyped-def]
    import prmbench.plugins as plugins_mod

    eps = [_EntryPoint(p.__name__, p) for p in plugins]
    monkeypatch.setattr(plugins_mod.importlib.metadata, "entry_points", lambda group: eps)
    warnings: list[str] = []
    return build_registry(strict=strict, warn=warnings.append), warnings


def test_plugin_taking_a_builtin_name_is_refused(monkeypatch):
    def register_tasks(register):  # type: ignore[no-untyped-def]
        register("math500", "my_pkg:FakeMath")
        register("my_task", "my_pkg:MyTask")

    reg, warnings = _registry_with(monkeypatch, _plugin("squatter", register_tasks=register_tasks))
    assert reg.get("task", "math500").origin == "prmbench.tasks"  # the built-in stays
    assert reg.find("task", "my_task") is None  # nothing of a refused plugin is half-registered
    status = next(p for p in reg.plugins if p["name"] == "squatter")["status"]
    assert status.startswith("failed") and "task 'math500'" in status and "override=True" in status
    assert any("squatter" in w and "prmbench.tasks already provides" in w for w in warnings)


def test_plugin_replaces_a_builtin_only_with_override(monkeypatch):
    def register_tasks(register):  # type: ignore[no-untyped-def]
        register("math500", "my_pkg:FakeMath", override=True)

    reg, warnings = _registry_with(monkeypatch, _plugin("replacer", register_tasks=register_tasks))
    assert reg.get("task", "math500").factory == "my_pkg:FakeMath"
    rec = next(p for p in reg.plugins if p["name"] == "replacer")
    assert rec["status"] == "loaded" and rec["overrides"] == ["task 'math500' of prmbench.tasks"]
    assert any("replaces task 'math500'" in w for w in warnings)


def test_misspelled_hook_is_reported(monkeypatch):
    def register_task(register):  # type: ignore[no-untyped-def]  # the hook is register_tasks
        register("typo_task", "my_pkg:T")

    reg, warnings = _registry_with(monkeypatch, _plugin("typo", register_task=register_task))
    status = next(p for p in reg.plugins if p["name"] == "typo")["status"]
    assert "unknown hook(s) 'register_task'. Did you mean" in status and "'register_tasks'" in status
    assert warnings and reg.find("task", "typo_task") is None
    with pytest.raises(PluginLoadError, match="register_task"):
        _registry_with(monkeypatch, _plugin("typo", register_task=register_task), strict=True)


# -- torn tail ----------------------------------------------------------------------------------
def test_complete_last_record_without_newline_is_kept(tmp_path):
    f = tmp_path / "samples.jsonl"
    f.write_text('{"problem_id": "a"}\n{"problem_id": "b"}')
    _drop_torn_tail(f)
    assert f.read_text() == '{"problem_id": "a"}\n{"problem_id": "b"}\n'
    f.write_text('{"problem_id": "a"}\n{"problem_id": "b')
    _drop_torn_tail(f)
    assert f.read_text() == '{"problem_id": "a"}\n'


def test_resume_after_a_lost_final_newline_keeps_every_record(spec, registry, tmp_path):
    out = Runner(spec, registry, tmp_path / "run").run()
    samples = out / "cells" / load_run(out).cells[0].id / "samples.jsonl"
    samples.write_bytes(samples.read_bytes().rstrip(b"\n"))
    Runner(spec, registry, out, resume=True).run()
    ids = [json.loads(line)["problem_id"] for line in samples.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == LIMIT and load_run(out).cells[0].metrics["n"] == LIMIT


# -- caps a policy cannot be metered in ------------------------------------------------------------
@pytest.mark.parametrize("unit, budget, match", [("flops", 10**12, "reports no parameter count"),
                                                  ("seconds", 5, "serves stored generations that take no time")])
def test_replay_under_an_unmeterable_cap_fails_up_front(spec, registry, tmp_path, monkeypatch, unit, budget, match):
    from prmbench.policies.replay import ReplayPolicy

    served = []
    real = ReplayPolicy.generate
    monkeypatch.setattr(ReplayPolicy, "generate", lambda self, reqs, ids=None: served.append(1) or real(self, reqs, ids))
    capped = RunSpec(**{**spec.__dict__, "budget_unit": unit, "budgets": (budget,)})
    with pytest.raises(ConfigError, match=match):
        Runner(capped, registry, tmp_path / "run").run()
    assert not served  # refused before any generation


def test_replay_with_parameters_runs_under_a_flops_cap(spec, registry, tmp_path):
    capped = RunSpec(**{**spec.__dict__, "budget_unit": "flops", "budgets": (10**9,),  # about two samples
                        "policy_args": {"num_parameters": 1_000_000}})
    out = Runner(capped, registry, tmp_path / "run").run()
    assert load_run(out).cells[0].metrics["n"] == LIMIT


# -- --X-args ----------------------------------------------------------------------------------
def test_strategy_args_reach_the_strategies_that_take_them(spec, registry, tmp_path):
    both = RunSpec(**{**spec.__dict__, "strategies": ("best_of_n", "majority_vote"), "strategy_args": {"aggregation": "min"}})
    out = Runner(both, registry, tmp_path / "run").run()
    comps = load_run(out).run["components"]["strategies"]
    assert comps["best_of_n"]["config"]["aggregation"] == "min"
    assert {c.strategy for c in load_run(out).cells} == {"best_of_n", "majority_vote"}


def test_cli_strategy_args_for_a_mixed_strategy_list(spec, tmp_path, capsys):
    from prmbench.cli import main

    argv = ["run", "--tasks", "math500", "--rm", "random", "--budget", "2", "--policy", spec.policy,
            "--data-file", f"math500={spec.data_files['math500']}", "--strategy", "best_of_n,majority_vote"]
    assert main([*argv, "--strategy-args", "aggregation=min", "--output", str(tmp_path / "a")]) == 0
    assert load_run(tmp_path / "a").run["components"]["strategies"]["best_of_n"]["config"]["aggregation"] == "min"
    capsys.readouterr()
    assert main([*argv, "--strategy-args", "mcts:c=2", "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'mcts' is not a strategy of this run (best_of_n, majority_vote)" in err


def test_named_component_args(registry):
    got = registry.distribute_args("strategy", ("best_of_n", "weighted_majority"),
                                   {"best_of_n:aggregation": "min", "aggregation": "prod"})
    assert got == {"best_of_n": {"aggregation": "min"}, "weighted_majority": {"aggregation": "prod"}}
    rm = registry.distribute_args("rm", ("qwen_prm:org/m", "random"), {"qwen_prm:org/m:dtype": "float32"})
    assert rm == {"qwen_prm:org/m": {"dtype": "float32"}, "random": {}}
    with pytest.raises(ConfigError, match="'beam' is not a strategy of this run"):
        registry.distribute_args("strategy", ("best_of_n",), {"beam:beam_width": 2})


def test_an_argument_no_component_takes_is_an_error(spec, registry, tmp_path):
    typo = RunSpec(**{**spec.__dict__, "strategies": ("best_of_n", "majority_vote"), "strategy_args": {"agregation": "min"}})
    with pytest.raises(ConfigError, match="does not take argument\\(s\\) 'agregation'; it accepts: aggregation"):
        Runner(typo, registry, tmp_path / "run").run()


# -- Hub commits ---------------------------------------------------------------------------------
def test_rm_snapshot_without_a_commit_is_refused(monkeypatch, tmp_path):
    import huggingface_hub

    from prmbench.reward_models.checkpoint import resolve_checkpoint

    snap = tmp_path / "not-a-commit"
    snap.mkdir()
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda spec, revision=None, allow_patterns=None: str(snap))
    with pytest.raises(ModelLoadError, match="cannot tell which commit of 'org/prm'.*--rm-args revision="):
        resolve_checkpoint("org/prm", "qwen_prm")
    assert resolve_checkpoint("org/prm", "qwen_prm", revision="a" * 40) == (snap, "a" * 40)
    good = tmp_path / ("b" * 40)
    good.mkdir()
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda spec, revision=None, allow_patterns=None: str(good))
    assert resolve_checkpoint("org/prm", "qwen_prm") == (good, "b" * 40)


def test_policy_hub_commit_lookup_failure_is_refused(monkeypatch):
    import transformers.utils.hub as hub_utils

    from prmbench.policies.hf import HFPolicy

    def broken(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError("cache layout not understood")

    def commit(revision):  # type: ignore[no-untyped-def]
        return HFPolicy._hub_commit(types.SimpleNamespace(_source="org/model", revision=revision))

    monkeypatch.setattr(hub_utils, "cached_file", broken)
    with pytest.raises(ModelLoadError, match="cannot tell which commit of 'org/model'.*--policy-args revision="):
        commit(None)
    assert commit("c" * 40) == "c" * 40  # a pinned commit needs no lookup
    monkeypatch.setattr(hub_utils, "cached_file", lambda *a, **k: f"/hf/models--org--model/snapshots/{'d' * 40}/config.json")
    assert commit(None) == "d" * 40
