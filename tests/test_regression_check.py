"""The CI regression fixture (results/ci/*.yaml) against its committed baselines.

Each fixture is re-run exactly as scripts/regression_check.sh runs it (the CLI with the YAML
config, inputs built by prmbench.testing.ci in runs/ci/inputs under the working folder) and must
reproduce its baseline record for record; the same run with a small, plausible bug injected must
fail the exact check, naming the changed records.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import yaml

from prmbench.cli import build_spec, main
from prmbench.compare_exact import VERDICT, compare_exact, render_exact
from prmbench.results import load_run

REPO = Path(__file__).resolve().parents[1]
FIXTURES = sorted((REPO / "results" / "ci").glob("*.yaml"))
BASELINES = REPO / "results" / "baselines" / "ci"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_data_dir, shared_models_dir):
    """A working folder like the repository root for the fixture: results/ (linked) + built inputs."""
    from prmbench.testing.ci import CODE_POOL_SOURCE, INPUTS_DIR, prepare_ci_inputs

    if not (shared_data_dir / "math500").is_dir() or not (shared_data_dir / CODE_POOL_SOURCE).is_file():
        pytest.skip(f"shared data not found in {shared_data_dir} (set PRMBENCH_DATA_DIR)")
    if not (shared_models_dir / "Qwen__Qwen2.5-7B-Instruct" / "tokenizer.json").is_file():
        pytest.skip(f"shared Qwen2.5 tokenizer not found in {shared_models_dir} (set PRMBENCH_MODELS_DIR)")
    root = tmp_path_factory.mktemp("ci")
    (root / "results").symlink_to(REPO / "results")
    prepare_ci_inputs(root / INPUTS_DIR, shared_data_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the configurations name their inputs relative to the working folder, as CI runs them
        yield root


def _run_fixture(name: str, output: Path) -> Path:
    assert main(["run", "--config", str(REPO / "results" / "ci" / f"{name}.yaml"), "--output", str(output)]) == 0
    return output


def test_the_fixture_covers_pool_step_level_and_code_search():
    configs = {p.stem: yaml.safe_load(p.read_text()) for p in FIXTURES}
    assert set(configs) == {"math_pool", "step_search", "code_pool"}
    assert {"beam_search", "mcts"} <= set(configs["step_search"]["strategy"].split(","))
    assert "ci_tiny_prm" in configs["step_search"]["rm"].split(",")
    assert configs["code_pool"]["tasks"] == "humaneval_plus"


@pytest.mark.parametrize("config", FIXTURES, ids=lambda p: p.stem)
def test_every_baseline_is_of_its_current_configuration(config):
    """Editing a fixture's YAML without regenerating its baseline is caught before any run."""
    spec, _ = build_spec(argparse.Namespace(config=str(config), include_path=None, data_file=None))
    baseline = load_run(BASELINES / config.stem, with_records=False)
    assert baseline.run["config"] == spec.to_json(), "regenerate: bash scripts/regression_check.sh --update"
    assert baseline.run["status"] == "complete" and not (BASELINES / config.stem / "cache.sqlite").exists()
    assert sorted(os.listdir(BASELINES)) == sorted(p.stem for p in FIXTURES)


def test_math_pool_fixture_reproduces_and_catches_a_grading_bug(workdir, monkeypatch):
    from prmbench.tasks.math500 import Math500Task

    baseline = load_run(BASELINES / "math_pool")
    same = compare_exact(baseline, load_run(_run_fixture("math_pool", workdir / "same-math")))
    assert same.identical and same.n_records == 450, render_exact(same)

    real_grade = Math500Task.grade

    def grade_negative_integers_wrong(self, problem, completion):  # a plausible bug: "-3" never matches
        g = real_grade(self, problem, completion)
        return type(g)(g.correct and not (problem.reference or "").strip().startswith("-"), g.details)

    monkeypatch.setattr(Math500Task, "grade", grade_negative_integers_wrong)
    broken = compare_exact(baseline, load_run(_run_fixture("math_pool", workdir / "broken-math")))
    assert broken.flipped and all(c.old and not c.new for c in broken.flipped)
    negative = {r["problem_id"] for c in baseline.cells for r in c.records
                if str(r["grade_details"].get("gold", "")).strip().startswith("-")}
    assert {c.problem_id for c in broken.changes} <= negative
    assert "correct -> wrong" in render_exact(broken)


def test_step_search_fixture_reproduces_and_catches_a_prm_format_bug(workdir, monkeypatch):
    """Beam search and MCTS guided by the tiny qwen_prm checkpoint: a PRM input-format bug (the
    system prompt dropped from the encoding) changes which steps survive, hence records."""
    from prmbench.reward_models.qwen_prm import QwenPRM

    baseline = load_run(BASELINES / "step_search")
    same = compare_exact(baseline, load_run(_run_fixture("step_search", workdir / "same-step")))
    assert same.identical and same.n_records == 240, render_exact(same)

    real_encode = QwenPRM.encode

    def encode_without_system_prompt(self, task, question, steps):
        saved, self.system_prompt = self.system_prompt, None
        try:
            return real_encode(self, task, question, steps)
        finally:
            self.system_prompt = saved

    monkeypatch.setattr(QwenPRM, "encode", encode_without_system_prompt)
    broken = compare_exact(baseline, load_run(_run_fixture("step_search", workdir / "broken-step")))
    assert broken.changes, "the exact check must see a PRM format bug"
    assert {c.cell.split("--")[1] for c in broken.changes} == {"ci_tiny_prm"}  # the perfect PRM's cells are unchanged


@pytest.mark.slow
def test_code_pool_fixture_reproduces_and_catches_a_judging_bug(workdir, monkeypatch):
    """HumanEval+ in the sandbox: a judge that takes a crash on the base inputs for a pass (and then
    skips the plus inputs) is caught record by record."""
    import dataclasses

    from prmbench.tasks.evalplus_tasks import HumanEvalPlusTask

    baseline = load_run(BASELINES / "code_pool")
    same = compare_exact(baseline, load_run(_run_fixture("code_pool", workdir / "same-code")))
    assert same.identical and same.n_records == 180, render_exact(same)

    real_judge = HumanEvalPlusTask.judge_program

    def judge_crash_as_pass(self, problem, program, splits=("base", "plus")):
        res = real_judge(self, problem, program, splits)
        if res["base"].status != "error":
            return res
        passed = dataclasses.replace(res["base"], status="pass", first_failure=None)
        return {**res, "base": passed, "plus": passed}

    monkeypatch.setattr(HumanEvalPlusTask, "judge_program", judge_crash_as_pass)
    broken = compare_exact(baseline, load_run(_run_fixture("code_pool", workdir / "broken-code")))
    assert broken.flipped and all(c.kind == VERDICT and not c.old and c.new for c in broken.flipped)
    assert "wrong -> correct" in render_exact(broken)
