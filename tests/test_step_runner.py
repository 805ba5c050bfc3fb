"""Step-level cells end to end: `prmbench run` without policy/strategy, records -> metrics, resume,
truncation, tiny real PRM families, mixed runs, the leaderboard tables and compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prmbench import step_runner
from prmbench.cli import main
from prmbench.plugins import build_registry
from prmbench.results import load_run
from prmbench.step_eval import processbench_metrics, rating_metrics
from prmbench.step_report import rm_table, spearman
from prmbench.testing.pools import build_math500_pool

PRM_FAMILIES = ("qwen_prm", "shepherd_prm", "value_head_prm", "rlhflow_prm")
STEP_TASKS = ("processbench_gsm8k", "processbench_math", "processbench_olympiadbench", "processbench_omnimath",
              "processbench", "prm800k_test", "prmbench_prm800k")


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _records(run_dir: Path, cell: str) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "cells" / cell / "samples.jsonl").read_text().splitlines()]


def _metrics(run_dir: Path, cell: str) -> dict:
    return json.loads((run_dir / "cells" / cell / "metrics.json").read_text())


def test_step_run_needs_no_policy_and_its_metrics_recompute_from_records(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "--tasks", "processbench_gsm8k,prm800k_test", "--rm", "random", "--limit", "30",
                             "--output", str(out))
    assert code == 0, err
    assert "### step-level cells" in stdout and "processbench_gsm8k" in stdout
    run = json.loads((out / "run.json").read_text())
    assert run["components"]["policy"] is None and run["status"] == "complete"
    assert [(c["id"], c["kind"]) for c in run["cells"]] == [("processbench_gsm8k--random", "step"),
                                                           ("prm800k_test--random", "step")]
    assert run["tasks"]["processbench_gsm8k"]["kind"] == "step" and run["tasks"]["processbench_gsm8k"]["n_problems"] == 30
    recs = _records(out, "processbench_gsm8k--random")
    assert len(recs) == 30 and {"problem_id", "label", "predicted", "step_scores", "truncated"} <= set(recs[0])
    assert all(r["predicted"] == next((i for i, s in enumerate(r["step_scores"]) if s < 0.5), -1) for r in recs)
    m = _metrics(out, "processbench_gsm8k--random")
    assert m["kind"] == "step" and m["complete"] is True
    assert {k: m[k] for k in processbench_metrics(recs, 0.5)} == processbench_metrics(recs, 0.5)
    recs = _records(out, "prm800k_test--random")
    assert {"problem_id", "rating", "score"} <= set(recs[0])
    m = _metrics(out, "prm800k_test--random")
    assert {k: m[k] for k in rating_metrics(recs, 0.5)} == rating_metrics(recs, 0.5)
    cells = load_run(out).cells
    assert [(c.kind, c.strategy, c.budget) for c in cells] == [("step", "", 0)] * 2


def test_interrupted_step_cell_resumes_without_rescoring(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["--tasks", "processbench_math", "--rm", "random", "--limit", "30", "--output", str(out)]
    monkeypatch.setattr(step_runner, "SCORE_CHUNK", 8)
    monkeypatch.setattr(step_runner.iter_step_chunks, "__defaults__", (None, 8))
    real = step_runner.score_pairs
    scored: list[int] = []

    def flaky(rm, task, pairs):
        if len(scored) == 1:
            raise KeyboardInterrupt
        scored.append(len(pairs))
        return real(rm, task, pairs)

    monkeypatch.setattr(step_runner, "score_pairs", flaky)
    assert _run(capsys, *args)[0] == 130
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert len(_records(out, "processbench_math--random")) == 8
    scored.append(0)  # let the rest through
    code, _, err = _run(capsys, *args, "--resume")
    assert code == 0, err
    assert sum(scored) == 30  # 8 before the interrupt, 22 after: nothing scored twice
    monkeypatch.setattr(step_runner, "score_pairs", real)
    fresh = tmp_path / "fresh"
    assert _run(capsys, *args[:-1], str(fresh))[0] == 0
    assert _records(out, "processbench_math--random") == _records(fresh, "processbench_math--random")
    assert _metrics(out, "processbench_math--random") == _metrics(fresh, "processbench_math--random")


def test_outcome_reward_models_are_refused_with_the_reason(capsys, tmp_path, tiny_rm_dirs):
    code, _, err = _run(capsys, "--tasks", "processbench_gsm8k", "--rm", f"random,orm:{tiny_rm_dirs['orm']}",
                        "--output", str(tmp_path / "o"))
    assert code == 2 and "Traceback" not in err
    assert "outcome reward model" in err and "needs a process reward model" in err
    code, _, err = _run(capsys, "--tasks", "prm800k_test", "--rm", "oracle", "--output", str(tmp_path / "o2"))
    assert code == 2 and "outcome reward model" in err


def test_a_search_task_still_needs_policy_strategy_and_budget(capsys, tmp_path):
    code, _, err = _run(capsys, "--tasks", "processbench_gsm8k,math500", "--rm", "random", "--output", str(tmp_path / "o"))
    assert code == 2 and "missing --strategy, --budget, --policy" in err and "math500" in err


def test_truncated_inputs_are_marked_and_counted(capsys, tmp_path, tiny_rm_dirs):
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "--tasks", "processbench_gsm8k", "--rm", f"qwen_prm:{tiny_rm_dirs['qwen_prm']}",
                             "--rm-args", "max_length=160", "--limit", "10", "--output", str(out))
    assert code == 0, err
    cell = next(p.name for p in (out / "cells").iterdir())
    recs = _records(out, cell)
    cut = [r for r in recs if r["truncated"]]
    assert cut and all(len(r["step_scores"]) < r["n_steps"] for r in cut)
    assert _metrics(out, cell)["n_truncated"] == len(cut)
    assert f"({len(cut)} truncated)" in stdout


@pytest.mark.parametrize("family", PRM_FAMILIES)
def test_tiny_prm_families_run_every_step_task(capsys, tmp_path, tiny_rm_dirs, family):
    out = tmp_path / "run"
    rm = f"{family}:{tiny_rm_dirs[family]}"
    code, stdout, err = _run(capsys, "--tasks", ",".join(STEP_TASKS), "--rm", rm, "--limit", "4",
                             "--rm-args", "batch_size=3", "--output", str(out))
    assert code == 0, err
    run = load_run(out)
    assert len(run.cells) == len(STEP_TASKS) and all(c.metrics["complete"] for c in run.cells)
    by_task = {c.task: c for c in run.cells}
    assert by_task["processbench"].metrics["subsets"].keys() == {"gsm8k", "math", "olympiadbench", "omnimath"}
    assert by_task["prmbench_prm800k"].metrics["prmscore"] is not None
    # batched scores equal one-at-a-time scores (up to float summation order)
    model = build_registry().build("rm", rm)
    rec = by_task["processbench_gsm8k"].records[2]
    task = build_registry().build("task", "processbench_gsm8k")
    item = next(i for i in task.load_items() if i.id == rec["problem_id"])
    single = model.score_items(task, [(item.question, list(item.steps))])[0].step_scores
    assert rec["step_scores"] == pytest.approx(list(single), abs=1e-5)
    # the shared content cache: processbench reuses the subset cells' scores
    pb = {r["problem_id"]: r["step_scores"] for r in by_task["processbench"].records}
    assert all(pb[r["problem_id"]] == r["step_scores"] for r in by_task["processbench_math"].records)


@pytest.fixture(scope="module")
def pool(shared_data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    build_math500_pool(shared_data_dir, path, problems=6, samples=4, seed=0)
    return path


def test_mixed_run_and_the_per_rm_table_with_rank_correlation(capsys, tmp_path, tiny_rm_dirs, pool, shared_data_dir):
    out = tmp_path / "mixed"
    rms = ["random"] + [f"{f}:{tiny_rm_dirs[f]}" for f in ("qwen_prm", "shepherd_prm", "rlhflow_prm")]
    code, stdout, err = _run(capsys, "--tasks", "processbench_gsm8k,prm800k_test,math500", "--rm", ",".join(rms),
                             "--strategy", "best_of_n,majority_vote", "--budget", "1,4", "--policy", f"replay:{pool}",
                             "--data-file", f"math500={shared_data_dir / 'math500' / 'test.jsonl'}",
                             "--limit", "6", "--output", str(out))
    assert code == 0, err
    run = load_run(out)
    kinds = {c.kind for c in run.cells}
    assert kinds == {"step", "search"}
    assert all(c["kind"] in ("step", "search") for c in json.loads((out / "run.json").read_text())["cells"])
    assert main(["leaderboard", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| math500" in text and "### step-level cells" in text
    assert "best-of-N gain over majority vote, per reward model" in text and "Spearman rank correlation" in text
    table = rm_table([run])
    assert sorted(table["rm"]) == sorted(rms)
    # a gain recomputed from the records
    cells = {(c.task, c.rm, c.strategy, c.budget): c for c in run.cells if c.kind == "search"}
    mv = {r["problem_id"]: r["correct"] for r in cells[("math500", "none", "majority_vote", 4)].records}
    bon = {r["problem_id"]: r["correct"] for r in cells[("math500", "random", "best_of_n", 4)].records}
    gain = sum(bon[p] - mv[p] for p in mv) / len(mv)
    assert table.set_index("rm").loc["random", "gain math500 @4"] == pytest.approx(gain)
    f1 = {c.rm: c.metrics["f1"] for c in run.cells if c.task == "processbench_gsm8k"}
    assert table.set_index("rm").loc["random", "processbench_gsm8k F1"] == f1["random"]
    assert main(["leaderboard", str(out), "--format", "csv"]) == 0
    csv = capsys.readouterr().out
    assert "# step-level cells" in csv


def test_spearman_hand_worked():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_compare_step_cells(capsys, tmp_path):
    base = tmp_path / "base"
    args = ["--tasks", "processbench_gsm8k,prm800k_test", "--rm", "random", "--limit", "60"]
    assert _run(capsys, *args, "--output", str(base))[0] == 0
    same = tmp_path / "same"
    assert _run(capsys, *args, "--output", str(same))[0] == 0
    assert main(["compare", str(base), str(same)]) == 0
    text = capsys.readouterr().out
    assert "processbench_gsm8k" in text and "+0.0" in text and "no step-level regression" in text
    # a new run whose PRM now misses every error location it found: a real drop in F1
    worse = tmp_path / "worse"
    shutil.copytree(base, worse)
    cell = worse / "cells" / "processbench_gsm8k--random" / "samples.jsonl"
    recs = [json.loads(x) for x in cell.read_text().splitlines()]
    for r in recs:
        if r["label"] >= 0:
            r["predicted"] = -1
    cell.write_text("".join(json.dumps(r) + "\n" for r in recs))
    hits = [r for r in _records(base, "processbench_gsm8k--random") if r["label"] >= 0 and r["predicted"] == r["label"]]
    assert hits  # the base found some
    assert main(["compare", str(base), str(worse)]) == 1
    text = capsys.readouterr().out
    assert "REGRESSED" in text and f"{len(hits)}/0" in text
