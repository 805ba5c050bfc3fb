"""`prmbench score`, reward-model names (presets, FAMILY:CHECKPOINT) and RM scores inside a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prmbench.aggregate import aggregate
from prmbench.cli import main
from prmbench.plugins import build_registry
from prmbench.reward_models.qwen_prm import QwenPRM
from prmbench.reward_models.shepherd_prm import ShepherdPRM


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


@pytest.fixture(scope="module")
def processbench_rows(shared_data_dir) -> list[dict]:
    rows = json.loads((shared_data_dir / "processbench" / "gsm8k.json").read_text())
    return rows[:6]


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- names ----------------------------------------------------------------------------------
def test_ls_rms_shows_families_and_presets(capsys):
    assert main(["ls", "rms"]) == 0
    out = capsys.readouterr().out
    for name in ("qwen_prm", "shepherd_prm", "value_head_prm", "rlhflow_prm", "orm", "math_prm", "code_prm",
                 "qwen25_math_prm_7b", "math_shepherd_prm", "skywork_prm_7b", "rlhflow_prm_8b_deepseek"):
        assert f"\n{name} " in out
    assert "family (qwen_prm:CHECKPOINT)" in out and "preset of skywork_prm_7b" in out


def test_presets_resolve_to_public_checkpoints(registry):
    r = registry.resolve("rm", "math_prm")
    assert r.family.name == "qwen_prm" and r.args == {"checkpoint": "Qwen/Qwen2.5-Math-PRM-7B"}
    code = registry.resolve("rm", "code_prm")
    assert code.family.name == "value_head_prm" and code.args["checkpoint"] == "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B"
    assert registry.resolve("rm", "orm").family.name == "orm"
    target = registry.resolve("rm", "qwen_prm:/x/y", {"aggregation": "prod"})
    assert target.args == {"checkpoint": "/x/y", "aggregation": "prod"}


def test_preset_with_overrides_and_family_target_build_the_same_model(registry, tiny_rm_dirs):
    d = str(tiny_rm_dirs["qwen_prm"])
    a = registry.build("rm", "math_prm", {"checkpoint": d, "aggregation": "prod"})
    b = registry.build("rm", f"qwen_prm:{d}", {"aggregation": "prod"})
    assert isinstance(a, QwenPRM) and a.config() == b.config() and a.aggregation == "prod"


def test_offline_hub_id_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"problem": "q", "steps": ["a"]}) + "\n")
    assert main(["score", "--rm", "math_prm", "--samples", str(rows)]) == 2
    err = capsys.readouterr().err
    assert "Qwen/Qwen2.5-Math-PRM-7B" in err and "HF_HUB_OFFLINE=1" in err and "checkpoint=/local/dir" in err


# -- prmbench score ---------------------------------------------------------------------------
def test_score_processbench_rows(tiny_rm_dirs, processbench_rows, tmp_path, capsys):
    src = tmp_path / "gsm8k_head.json"
    src.write_text(json.dumps(processbench_rows))
    out = tmp_path / "scored.jsonl"
    d = tiny_rm_dirs["qwen_prm"]
    assert main(["score", "--rm", f"qwen_prm:{d}", "--samples", str(src), "--output", str(out),
                 "--batch-size", "2", "--rm-args", "aggregation=prod"]) == 0
    assert "scored 6 rows" in capsys.readouterr().err
    got = _read(out)
    assert [r["id"] for r in got] == [r["id"] for r in processbench_rows]
    want = QwenPRM(str(d)).score_items(None, [(r["problem"], r["steps"]) for r in processbench_rows])
    for row, src_row, o in zip(got, processbench_rows, want):
        assert {k: row[k] for k in src_row} == src_row  # every input field kept
        assert len(row["step_scores"]) == len(src_row["steps"])
        assert row["step_scores"] == pytest.approx(list(o.step_scores), abs=1e-4)
        assert row["score"] == pytest.approx(aggregate(row["step_scores"], "prod"))
        assert row["truncated"] is False


def test_score_task_rows_split_by_the_task(tiny_rm_dirs, shared_data_dir, tmp_path):
    problems = [json.loads(line) for line in (shared_data_dir / "math500" / "test.jsonl").read_text().splitlines()[:2]]
    rows = tmp_path / "gens.jsonl"
    rows.write_text("".join(json.dumps({"problem_id": p["unique_id"], "completion": p["solution"]}) + "\n"
                            for p in problems))
    out = tmp_path / "scored.jsonl"
    d = tiny_rm_dirs["shepherd_prm"]
    assert main(["score", "--rm", f"shepherd_prm:{d}", "--task", "math500", "--samples", str(rows), "--output", str(out),
                 "--data-file", str(shared_data_dir / "math500" / "test.jsonl")]) == 0
    got = _read(out)
    task = build_registry().build("task", "math500", {"data_file": str(shared_data_dir / "math500" / "test.jsonl")})
    for row, p in zip(got, problems):
        steps = task.split_steps(p["solution"])
        assert len(row["step_scores"]) == len(steps) >= 1
        want = ShepherdPRM(str(d)).score_items(task, [(p["problem"], steps)])[0]
        assert row["step_scores"] == pytest.approx(list(want.step_scores), abs=1e-4)
        assert row["score"] == pytest.approx(min(row["step_scores"]))  # the family's default aggregation


def test_score_reports_truncation(tiny_rm_dirs, processbench_rows, tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in processbench_rows[:2]))
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--rm", f"qwen_prm:{tiny_rm_dirs['qwen_prm']}", "--rm-args", "max_length=128",
                 "--samples", str(src), "--output", str(out)]) == 0
    assert "truncated" in capsys.readouterr().err
    for row in _read(out):
        assert row["truncated"] is True and len(row["step_scores"]) < len(row["steps"])


@pytest.mark.parametrize("content, message", [
    ('{"problem": "q", "steps": "not a list"}\n', "must be a list of strings"),
    ('{"steps": ["a"]}\n', "needs the question"),
    ('{"problem_id": "x", "completion": "y"}\n', "need --task"),
    ('{"foo": 1}\n', "needs either"),
    ('[1, 2]', "not an object"),
])
def test_score_bad_rows_are_clear_errors(content, message, tiny_rm_dirs, tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text(content)
    assert main(["score", "--rm", f"qwen_prm:{tiny_rm_dirs['qwen_prm']}", "--samples", str(src)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("rm_args, message", [
    ("aggregaton=min", "does not take argument(s) 'aggregaton'; it accepts: checkpoint, system_prompt, aggregation"),
    ("batch_size=0", "batch_size must be a positive integer"),
    ("dtype=int8", "unknown dtype 'int8'"),
    ("aggregation=median", "unknown aggregation 'median'"),
    ("padding_side=middle", "padding_side must be left or right"),
])
def test_bad_rm_arguments_are_clear_errors(rm_args, message, tiny_rm_dirs, tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"problem": "q", "steps": ["a"]}\n')
    assert main(["score", "--rm", f"qwen_prm:{tiny_rm_dirs['qwen_prm']}", "--rm-args", rm_args,
                 "--samples", str(src)]) == 2
    assert message in capsys.readouterr().err


def test_score_missing_checkpoint_folder(tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"problem": "q", "steps": ["a"]}\n')
    assert main(["score", "--rm", f"qwen_prm:{tmp_path / 'nope'}", "--samples", str(src)]) == 2
    assert "tiny-rm --family qwen_prm" in capsys.readouterr().err


# -- inside a run: metered, cached, truncation recorded ------------------------------------
def test_run_meters_rm_tokens_and_records_truncation(tiny_rm_dirs, shared_data_dir, tmp_path):
    from prmbench.results import load_run
    from prmbench.runner import RunSpec, Runner
    from prmbench.testing.pools import build_math500_pool

    pool = tmp_path / "pool.jsonl"
    build_math500_pool(shared_data_dir, pool, problems=3, samples=4, seed=0)
    d = tiny_rm_dirs["shepherd_prm"]
    spec = RunSpec(tasks=("math500",), rms=(f"shepherd_prm:{d}",), strategies=("best_of_n",), budgets=(4,),
                   policy=f"replay:{pool}", rm_args={"max_length": 160},
                   data_files={"math500": str(shared_data_dir / "math500" / "test.jsonl")})
    registry = build_registry(strict=True)
    Runner(spec, registry, tmp_path / "run").run()
    records = load_run(tmp_path / "run").cells[0].records
    rm = registry.build("rm", f"shepherd_prm:{d}", {"max_length": 160})
    assert len(records) == 3
    for r in records:
        spend = r["spend"]
        assert spend["rm_calls"] == 4 and spend["rm_tokens"] > 0
        assert spend["rm_flops"] == pytest.approx(2.0 * rm.num_parameters * spend["rm_tokens"])
    assert sum(r["info"].get("rm_truncated", 0) for r in records) > 0  # some solutions exceed 160 tokens


# -- python -m prmbench.testing tiny-rm ------------------------------------------------------
def test_tiny_rm_cli_builds_a_loadable_checkpoint(tmp_path, capsys, shared_models_dir):
    from prmbench.testing.__main__ import main as testing_main

    if not (shared_models_dir / "mistralai__Mistral-7B-v0.1" / "tokenizer.json").is_file():
        pytest.skip("shared Mistral tokenizer not found")
    out = tmp_path / "shepherd"
    assert testing_main(["tiny-rm", "--family", "shepherd_prm", str(out), "--hidden", "16", "--layers", "1"]) == 0
    assert f"--rm shepherd_prm:{out}" in capsys.readouterr().out
    meta = json.loads((out / "prmbench_tiny_model.json").read_text())
    assert meta["family"] == "shepherd_prm" and "Mistral" in meta["tokenizer"]
    rm = ShepherdPRM(str(out))
    assert len(rm.score_items(None, [("q?", ["a", "b"])])[0].step_scores) == 2
    with pytest.raises(SystemExit):  # not empty without --force
        testing_main(["tiny-rm", "--family", "shepherd_prm", str(out)])
