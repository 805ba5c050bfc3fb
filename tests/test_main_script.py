"""scripts/main.sh: its overrides (PRMBENCH_POLICY, PRMBENCH_RM, ...) are independent of each other.

The script runs for real (bash, its own setup.sh) against a stand-in virtual environment whose
`python` and `prmbench` only log their arguments, so what is checked is exactly the commands the
script would run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$PRMBENCH_TEST_LOG"
"""


def run_main(tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a copy of scripts/main.sh with stub tools; (process, logged command lines)."""
    repo = tmp / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("main.sh", "setup.sh"):
        shutil.copy(ROOT / "scripts" / name, repo / "scripts" / name)
    venv = tmp / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "prmbench"):
        (venv / "bin" / tool).write_text(STUB)
        (venv / "bin" / tool).chmod(0o755)
    (venv / ".prmbench-installed").touch()
    log = tmp / "log.txt"
    log.touch()
    data = tmp / "data"
    data.mkdir()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PRMBENCH_", "HF_")) and k not in ("VIRTUAL_ENV",)}
    full = {**base, "PRMBENCH_VENV": str(venv), "PRMBENCH_TEST_LOG": str(log), "PRMBENCH_DATA_DIR": str(data),
            "PRMBENCH_OUTPUT": str(tmp / "out"), **env}
    proc = subprocess.run(["bash", str(repo / "scripts" / "main.sh")], env=full, capture_output=True, text=True,
                          timeout=60)
    return proc, log.read_text().splitlines()


def run_args(lines: list[str]) -> list[str]:
    """The arguments of the `prmbench run` call."""
    [line] = [ln for ln in lines if ln.startswith("prmbench run ")]
    return line.split()


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_main_lab_runs_the_lab_only(tmp_path):
    proc, lines = run_main(tmp_path, PRMBENCH_MAIN="lab")
    assert proc.returncode == 0, proc.stderr
    assert lines == [f"prmbench lab --output {tmp_path / 'out'}"]  # nothing else built or run


def test_unknown_main_is_one_line_exit_2(tmp_path):
    proc, lines = run_main(tmp_path, PRMBENCH_MAIN="both")
    assert proc.returncode == 2 and "PRMBENCH_MAIN must be lab or matrix" in proc.stderr and not lines


@pytest.mark.parametrize("env, policy, rm, builds", [
    ({}, "hf:runs/tiny-model", "qwen_prm:runs/tiny-prm,oracle", {"tiny-model", "tiny-rm"}),
    ({"PRMBENCH_MAIN": "matrix"}, "hf:runs/tiny-model", "qwen_prm:runs/tiny-prm,oracle", {"tiny-model", "tiny-rm"}),
    ({"PRMBENCH_POLICY": "hf:/models/mine"}, "hf:/models/mine", "qwen_prm:runs/tiny-prm,oracle", {"tiny-rm"}),
    ({"PRMBENCH_RM": "orm:/rms/x"}, "hf:runs/tiny-model", "orm:/rms/x,oracle", {"tiny-model"}),
    ({"PRMBENCH_POLICY": "hf:/m", "PRMBENCH_RM": "math_prm"}, "hf:/m", "math_prm,oracle", set()),
])
def test_overrides_are_independent(tmp_path, env, policy, rm, builds):
    proc, lines = run_main(tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    args = run_args(lines)
    assert flag(args, "--policy") == policy and flag(args, "--rm") == rm
    built = {ln.split()[3] for ln in lines if ln.startswith("python -m prmbench.testing")}
    assert built == builds  # only the defaults actually used are built
    assert flag(args, "--budget") == "2,4" and flag(args, "--output") == str(tmp_path / "out")
    assert any(ln.startswith("prmbench leaderboard ") for ln in lines)


def test_limit_and_max_tokens_overrides(tmp_path):
    proc, lines = run_main(tmp_path, PRMBENCH_LIMIT="2", PRMBENCH_MAX_TOKENS="16", PRMBENCH_POLICY="hf:/m")
    assert proc.returncode == 0, proc.stderr
    args = run_args(lines)
    assert flag(args, "--limit") == "2" and flag(args, "--max-tokens") == "16"
