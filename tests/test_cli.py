"""The command line: bad input gets a one-line fix and exit status 2; the main commands work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prmbench.cli import main
from prmbench.testing.pools import build_math500_pool


@pytest.fixture(scope="module")
def pool(shared_data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    build_math500_pool(shared_data_dir, path, problems=6, samples=4, seed=1)
    return path


def _err(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    return captured.err


def _run_args(pool, **over):
    args = {"--tasks": "math500", "--rm": "oracle", "--strategy": "best_of_n", "--budget": "1,2",
            "--policy": f"replay:{pool}"}
    args.update(over)
    return ["run", *[x for k, v in args.items() if v is not None for x in (k, v)]]


@pytest.mark.parametrize("over, expected", [
    ({"--tasks": "math50"}, "unknown task 'math50'. Did you mean one of 'math500', 'lab_math'?"),
    ({"--rm": "oracel"}, "Did you mean 'oracle'?"),
    ({"--strategy": "best_of_n,majorty_vote"}, "Did you mean 'majority_vote'?"),
    ({"--policy": "hf2:/x"}, "unknown policy"),
    ({"--budget": "1,four"}, "malformed --budget entry 'four'"),
    ({"--budget": "0"}, "malformed --budget entry '0'"),
    ({"--budget": None}, "missing --budget"),
    ({"--rm": "oracle,,random"}, "--rm has an empty entry"),
    ({"--strategy-args": "agregation=min"}, "does not take argument(s) 'agregation'; it accepts: aggregation"),
])
def test_bad_run_input(capsys, pool, over, expected):
    assert expected in _err(capsys, _run_args(pool, **over))


def test_missing_data_offline_names_both_fixes(capsys, pool, monkeypatch, tmp_path):
    monkeypatch.delenv("PRMBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = _err(capsys, _run_args(pool, **{"--output": str(tmp_path / "o")}))
    assert "--data-file" in err and "PRMBENCH_DATA_DIR" in err


def test_model_that_cannot_be_loaded(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = _err(capsys, ["run", "--tasks", "math500", "--rm", "oracle", "--strategy", "best_of_n", "--budget", "1",
                        "--policy", "hf:no-such-org/no-such-model", "--output", str(tmp_path / "o")])
    assert "no-such-org/no-such-model" in err


def test_unwritable_output(capsys, pool, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _err(capsys, _run_args(pool, **{"--output": str(blocker / "run")}))
    assert "--output" in err


def test_data_file_for_unknown_task(capsys, pool, tmp_path):
    err = _err(capsys, _run_args(pool, **{"--data-file": f"gsm8k={pool}"}))
    assert "not in --tasks" in err


def test_bad_config_file(capsys, pool, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("taks: math500\n")
    assert "unknown key(s) taks" in _err(capsys, ["run", "--config", str(cfg)])


def test_run_from_config_then_leaderboard_and_compare(capsys, pool, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"tasks: math500\nrm: [oracle, random]\nstrategy: best_of_n,majority_vote\nbudget: [1, 4]\n"
                   f"policy: replay:{pool}\nlimit: 6\n")
    out = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "best_of_n" in text and f"results: {out}" in text
    assert main(["leaderboard", str(out), "--format", "csv", "--plot", str(tmp_path / "p.png")]) == 0
    csv = capsys.readouterr().out.splitlines()
    for col in ["task", "rm", "strategy", "budget", "n", "accuracy", "ci_low", "ci_high",
                "mean_generated_tokens", "mean_flops"]:
        assert col in csv[0].split(",")
    assert len(csv) == 1 + 2 * 2 + 2
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", str(out), str(out)]) == 0
    capsys.readouterr()


def test_evaluate_samples(capsys, shared_data_dir, tmp_path):
    rows = [json.loads(l) for l in (shared_data_dir / "math500" / "test.jsonl").read_text().splitlines()[:3]]
    samples = tmp_path / "s.jsonl"
    with samples.open("w") as f:
        f.write(json.dumps({"problem_id": rows[0]["unique_id"], "completion": rows[0]["solution"], "extra": 1}) + "\n")
        f.write(json.dumps({"task_id": rows[1]["unique_id"], "completion": "so the answer is \\boxed{-12345}"}) + "\n")
        f.write(json.dumps({"problem_id": rows[2]["unique_id"], "completion": f"\\boxed{{{rows[2]['answer']}}}"}) + "\n")
    out = tmp_path / "graded.jsonl"
    assert main(["evaluate-samples", "--task", "math500", "--samples", str(samples), "--output", str(out)]) == 0
    graded = [json.loads(l) for l in out.read_text().splitlines()]
    assert [g["correct"] for g in graded] == [True, False, True]
    assert graded[0]["extra"] == 1 and "details" in graded[0]
    assert "graded 3 rows: 2 correct" in capsys.readouterr().err


@pytest.mark.parametrize("line, expected", [
    ("{not json", ":2: not valid JSON"),
    ('{"completion": "x"}', ":2: row has no problem id field"),
    ('{"problem_id": "test/precalculus/807.json"}', ":2: row has no completion field"),
    ('{"problem_id": "nope", "completion": "x"}', ":2: problem id 'nope' is not in task 'math500'"),
])
def test_evaluate_samples_bad_rows(capsys, tmp_path, line, expected):
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"problem_id": "test/precalculus/807.json", "completion": "\\\\boxed{1}"}\n' + line + "\n")
    assert expected in _err(capsys, ["evaluate-samples", "--task", "math500", "--samples", str(samples)])


def test_help_has_examples():
    out = subprocess.run([sys.executable, "-m", "prmbench", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "examples:" in out.stdout and "--resume" in out.stdout


def test_ls_lists_components(capsys):
    assert main(["ls", "strategies"]) == 0
    out = capsys.readouterr().out
    assert "best_of_n_min" in out and "preset of best_of_n" in out and "prmbench.strategies" in out
