"""Third-party plugins: real distributions installed with pip and discovered through entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _pip_install(src: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A site folder holding the installed demo plugin distribution (metadata + entry point)."""
    site = tmp_path_factory.mktemp("site")
    _pip_install(HERE / "plugin_dist", site)
    assert list(site.glob("prmbench_demo_plugin-*.dist-info/entry_points.txt"))
    return site


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("broken-site")
    _pip_install(HERE / "plugin_dist_broken", site)
    return site


def _prmbench(args: list[str], sites: list[Path], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(str(s) for s in sites), **env}
    environ.pop("PRMBENCH_STRICT_PLUGINS", None)
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "prmbench", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_plugin_listed_with_its_distribution(plugin_site, tmp_path):
    out = _prmbench(["ls", "plugins"], [plugin_site], tmp_path)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("demo"))
    assert "prmbench-demo-plugin 0.1.0" in line and "loaded" in line
    tasks = _prmbench(["ls", "tasks"], [plugin_site], tmp_path).stdout
    assert "demo_add " in tasks and "demo_add_small" in tasks and "preset of demo_add" in tasks


@pytest.mark.slow
def test_plugin_task_and_strategy_run_end_to_end(plugin_site, tmp_path):
    # replayed generations: sample k of problem i answers i + 3i when k is even, a wrong sum otherwise
    pool = tmp_path / "pool.jsonl"
    with pool.open("w") as f:
        for i in range(3):
            comps = [f"The sum is {3 * i}." if k % 2 == 0 else f"The sum is {3 * i + 1}." for k in range(4)]
            f.write(json.dumps({"problem_id": f"add/{i}", "completions": comps}) + "\n")
    out = _prmbench(["run", "--tasks", "demo_add_small", "--rm", "random", "--strategy", "last_sample,best_of_n",
                     "--budget", "1,2", "--policy", f"replay:{pool}", "--output", "run"], [plugin_site], tmp_path)
    assert out.returncode == 0, out.stderr
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert any(p["name"] == "demo" and p["status"] == "loaded" for p in run["plugins"])
    cells = {(c["strategy"], c["rm"], c["budget"]): c["id"] for c in run["cells"]}
    # last_sample uses no reward model: one cell per budget, rm "none"
    assert ("last_sample", "none", 1) in cells and ("last_sample", "random", 1) not in cells

    def acc(key):
        m = json.loads((tmp_path / "run" / "cells" / cells[key] / "metrics.json").read_text())
        return m["accuracy"], m["n"]

    assert acc(("last_sample", "none", 1)) == (1.0, 3)  # sample 0 is right
    assert acc(("last_sample", "none", 2)) == (0.0, 3)  # sample 1 is wrong


@pytest.mark.slow
def test_broken_plugin_is_reported_and_skipped(plugin_site, broken_site, tmp_path):
    out = _prmbench(["ls", "plugins"], [plugin_site, broken_site], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "plugin 'broken' (prmbench-broken-plugin 0.1.0) failed to load" in out.stderr
    assert "a_dependency_that_is_not_installed" in out.stderr and "PRMBENCH_STRICT_PLUGINS=1" in out.stderr
    assert any(l.startswith("demo") and "loaded" in l for l in out.stdout.splitlines())
    assert any(l.startswith("broken") and "failed" in l for l in out.stdout.splitlines())


@pytest.mark.slow
def test_strict_mode_makes_plugin_failure_fatal(broken_site, tmp_path):
    out = _prmbench(["ls", "tasks"], [broken_site], tmp_path, PRMBENCH_STRICT_PLUGINS="1")
    assert out.returncode == 2
    assert "failed to load" in out.stderr and "Traceback" not in out.stderr
