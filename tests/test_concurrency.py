"""Concurrent search (`--concurrency K`): the same records as one problem at a time, fewer and
bigger backend calls, and interruption/resume in the middle of a concurrent cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prmbench.plugins import build_registry
from prmbench.registry import Entry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner
from prmbench.testing.synthetic import SyntheticPolicy, SyntheticTask

STRATEGIES = ("best_of_n", "majority_vote", "weighted_majority", "beam_search", "mcts", "mcts_rollout", "dvts")


class CountingSynthetic(SyntheticPolicy):
    """The real synthetic backend, counting backend calls and rows; raises KeyboardInterrupt on
    call number `interrupt_at` (a Ctrl-C arriving while the searches of a cell are in flight)."""

    calls = 0
    rows = 0
    interrupt_at: int | None = None
    interrupt_when: Any = None  # or a callable: interrupt once it returns True
    error: type[BaseException] = KeyboardInterrupt

    def generate(self, requests, problem_ids=None):
        CountingSynthetic.calls += 1
        CountingSynthetic.rows += sum(r.n for r in requests)
        at = CountingSynthetic.interrupt_at
        if (at is not None and CountingSynthetic.calls >= at) or (CountingSynthetic.interrupt_when or bool)():
            raise CountingSynthetic.error("backend failed")
        return super().generate(requests, problem_ids)


@pytest.fixture()
def registry():
    reg = build_registry(strict=True)
    reg.add(Entry(kind="policy", name="counting_synthetic", origin="test", factory=CountingSynthetic, target=None))
    CountingSynthetic.calls = CountingSynthetic.rows = 0
    CountingSynthetic.interrupt_at = CountingSynthetic.interrupt_when = None
    CountingSynthetic.error = KeyboardInterrupt
    return reg


def comparable(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Records by cell, in file order, without the measured wall-clock fields."""
    out = {}
    for cell in load_run(run_dir).cells:
        lines = [json.loads(x) for x in (run_dir / "cells" / cell.id / "samples.jsonl").read_text().splitlines()]
        for r in lines:
            r["info"].pop("wall_seconds")
            r["spend"].pop("seconds")
        out[cell.id] = lines
    return out


def synthetic_spec(rms=("synthetic_prm", "random", "oracle"), strategies=STRATEGIES, limit=24,
                   policy="counting_synthetic") -> RunSpec:
    return RunSpec(tasks=("synthetic",), rms=rms, strategies=strategies, budgets=(2, 8), policy=policy,
                   limit=limit, seed=3)


def test_records_identical_at_concurrency_1_and_16_for_every_strategy(tmp_path, registry):
    spec = synthetic_spec()
    one = Runner(spec, registry, tmp_path / "k1", log=lambda m: None, concurrency=1).run()
    calls_one, rows_one = CountingSynthetic.calls, CountingSynthetic.rows
    CountingSynthetic.calls = CountingSynthetic.rows = 0
    many = Runner(spec, registry, tmp_path / "k16", log=lambda m: None, concurrency=16).run()
    a, b = comparable(one), comparable(many)
    assert len(a) == 3 * 6 * 2 + 2 and a == b  # majority vote: rm none
    order = [p.id for p in SyntheticTask().load()[:24]]
    for cell, recs in b.items():  # problem order, every problem once
        assert [r["problem_id"] for r in recs] == order, cell
    # the same work in far fewer backend calls
    assert CountingSynthetic.rows == rows_one
    assert CountingSynthetic.calls * 4 < calls_one
    assert json.loads((many / "run.json").read_text())["concurrency"] == 16


def test_interrupted_concurrent_cell_resumes_to_the_same_records(tmp_path, registry, monkeypatch):
    monkeypatch.setattr("prmbench.units.GRADE_CHUNK", 3)  # the solver of work units grades in chunks
    spec = synthetic_spec(rms=("synthetic_prm",), strategies=("beam_search", "mcts"), limit=20)
    want = comparable(Runner(spec, registry, tmp_path / "ref", log=lambda m: None, concurrency=1).run())
    total = CountingSynthetic.rows  # samples the whole run draws (the same at any concurrency)
    out = tmp_path / "run"

    def some_cell_half_written() -> bool:  # Ctrl-C in a cell with records written and searches in flight
        return any(0 < len(f.read_text().splitlines()) < 20 for f in (out / "cells").glob("*/samples.jsonl"))

    CountingSynthetic.interrupt_when = some_cell_half_written
    with pytest.raises(KeyboardInterrupt):
        Runner(spec, registry, out, log=lambda m: None, concurrency=8).run()
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    files = sorted((out / "cells").glob("*/samples.jsonl"))
    kept = {f: f.read_text().splitlines() for f in files}
    assert any(0 < len(lines) < 20 for lines in kept.values())
    CountingSynthetic.interrupt_when = None
    CountingSynthetic.rows = 0
    Runner(spec, registry, out, resume=True, log=lambda m: None, concurrency=16).run()
    for f, lines in kept.items():
        assert f.read_text().splitlines()[: len(lines)] == lines  # nothing written was rewritten
    assert comparable(out) == want
    assert CountingSynthetic.rows < total  # the cache kept what was computed before Ctrl-C


def test_an_error_in_one_search_stops_the_cell_with_that_error(tmp_path, registry):
    from prmbench.errors import ModelLoadError

    spec = synthetic_spec(rms=("synthetic_prm",), strategies=("beam_search",), limit=8)
    CountingSynthetic.interrupt_at, CountingSynthetic.error = 5, ModelLoadError
    with pytest.raises(ModelLoadError, match="backend failed"):
        Runner(spec, registry, tmp_path / "run", log=lambda m: None, concurrency=4).run()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed: ModelLoadError"


def test_concurrency_must_be_positive(tmp_path, registry, capsys):
    from prmbench.cli import main
    from prmbench.errors import ConfigError

    with pytest.raises(ConfigError):
        Runner(synthetic_spec(), registry, tmp_path / "x", concurrency=0)
    assert main(["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "synthetic_prm", "--strategy",
                 "best_of_n", "--budget", "2", "--concurrency", "0", "--output", str(tmp_path / "y")]) == 2
    assert "--concurrency must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_model_records_identical_at_concurrency_1_and_8(tmp_path, tiny_model_dir, tiny_rm_dirs, shared_data_dir):
    """The real hf policy (tiny Qwen2, fp32) and real reward models (oracle, random, a tiny
    Qwen2.5-Math-PRM): batch invariance holds across problems, so records do not change."""
    rm = f"qwen_prm:{tiny_rm_dirs['qwen_prm']}"
    spec = RunSpec(tasks=("math500",), rms=("oracle", "random", rm), strategies=("best_of_n", "beam_search", "mcts", "dvts"),
                   budgets=(4,), policy=f"hf:{tiny_model_dir}", limit=8, max_tokens=12,
                   data_files={"math500": str(shared_data_dir / "math500" / "test.jsonl")})
    reg = build_registry(strict=True)
    a = comparable(Runner(spec, reg, tmp_path / "k1", log=lambda m: None, concurrency=1).run())
    b = comparable(Runner(spec, reg, tmp_path / "k8", log=lambda m: None, concurrency=8).run())
    assert len(a) == 12 and a == b


def test_gpu_throughput_script_runs_its_cpu_path(tmp_path, shared_data_dir):
    """benchmarks/gpu_throughput.py on a tiny config and the CPU (no GPU is lent here): every K
    decodes its rows to the end and the figures are consistent."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_throughput.py"
    spec = importlib.util.spec_from_file_location("gpu_throughput", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.run("tiny", "cpu", "auto", [1, 4], 6, 1, tmp_path)
    assert out["k1"]["generated_tokens"] <= 6 and 0 < out["k4"]["generated_tokens"] <= 24
    assert out["ratio"] == pytest.approx(out["k4"]["tokens_per_second"] / out["k1"]["tokens_per_second"])


def test_config_yaml_takes_concurrency_and_a_single_number_budget(tmp_path, capsys):
    """`--config` YAML: `concurrency: 4` reaches the runner, `budget: 4` (a YAML int) is a budget."""
    from prmbench.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text("tasks: synthetic\npolicy: synthetic\nrm: synthetic_prm\nstrategy: beam_search\nbudget: 4\n"
                   "limit: 3\nconcurrency: 4\n")
    assert main(["run", "--config", str(cfg), "--output", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "beam_search" in out and "accuracy 0." in err and "accuracy 0." not in out  # log lines on stderr
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["concurrency"] == 4 and run["config"]["budgets"] == [4]
