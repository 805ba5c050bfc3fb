"""`--resume` continues only the same experiment: same flags, data, models and prmbench version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prmbench.cli import main
from prmbench.errors import ConfigError
from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.runner import RunSpec, Runner
from prmbench.testing.pools import build_math500_pool

LIMIT = 4


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


@pytest.fixture()
def setup(shared_data_dir, tmp_path):
    pool = tmp_path / "pool.jsonl"
    build_math500_pool(shared_data_dir, pool, problems=LIMIT, samples=4, seed=0)
    data = tmp_path / "test.jsonl"
    shutil.copy(shared_data_dir / "math500" / "test.jsonl", data)
    spec = RunSpec(tasks=("math500",), rms=("random",), strategies=("best_of_n",), budgets=(2,),
                   policy=f"replay:{pool}", data_files={"math500": str(data)})
    return spec, pool, data


def _edit_last_answer(data: Path) -> None:
    rows = data.read_text().splitlines()
    last = json.loads(rows[-1])
    last["answer"] = last["answer"] + "0"
    data.write_text("\n".join([*rows[:-1], json.dumps(last)]) + "\n")


def test_resume_refuses_changed_data(setup, registry, tmp_path):
    spec, _, data = setup
    Runner(spec, registry, tmp_path / "run").run()
    _edit_last_answer(data)  # the same --data-file path (same config hash), other content
    with pytest.raises(ConfigError, match=r"cannot --resume .*the data of task 'math500' differs .*new --output"):
        Runner(spec, registry, tmp_path / "run", resume=True).run()


def test_resume_refuses_a_changed_replay_file(setup, registry, shared_data_dir, tmp_path):
    spec, pool, _ = setup
    Runner(spec, registry, tmp_path / "run").run()
    build_math500_pool(shared_data_dir, pool, problems=LIMIT, samples=4, seed=1)
    with pytest.raises(ConfigError, match=r"the policy \(config\.sha256\) differs"):
        Runner(spec, registry, tmp_path / "run", resume=True).run()


def test_resume_refuses_another_prmbench_version(setup, registry, tmp_path, monkeypatch):
    import prmbench.runner as runner_mod

    spec, _, _ = setup
    Runner(spec, registry, tmp_path / "run").run()
    monkeypatch.setattr(runner_mod, "__version__", "99.0")
    with pytest.raises(ConfigError, match=r"the prmbench version differs .*\(0\.1\.0 there, 99\.0 now\)"):
        Runner(spec, registry, tmp_path / "run", resume=True).run()


def test_resume_of_the_same_run_is_accepted(setup, registry, tmp_path):
    spec, _, _ = setup
    Runner(spec, registry, tmp_path / "run").run()
    Runner(spec, registry, tmp_path / "run", resume=True).run()
    assert load_run(tmp_path / "run").run["status"] == "complete"


def test_cli_resume_refusal_is_one_line_exit_2(setup, tmp_path, capsys):
    spec, pool, data = setup
    argv = ["run", "--tasks", "math500", "--rm", "random", "--strategy", "best_of_n", "--budget", "2",
            "--policy", f"replay:{pool}", "--data-file", f"math500={data}", "--output", str(tmp_path / "run")]
    assert main(argv) == 0
    capsys.readouterr()
    _edit_last_answer(data)
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    # the refusal is one line (log lines, such as the replay coverage note, also go to stderr)
    errors = [line for line in err.splitlines() if line.startswith("prmbench: error")]
    assert "Traceback" not in err and len(errors) == 1
    assert "the data of task 'math500' differs" in errors[0] and "--output" in errors[0]
    assert main([*argv, "--budget", "3", "--resume"]) == 2  # the last --budget wins
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "different configuration (budgets: [2] there, [3] now)" in err
