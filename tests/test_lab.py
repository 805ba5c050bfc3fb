"""`prmbench lab`: the policy trainer (deterministic, cached) and the --quick path end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prmbench.cli import main
from prmbench.errors import ConfigError
from prmbench.lab.trainer import PolicySpec, make_task, train_policy
from sandbox_support import BWRAP_SKIP

TINY = PolicySpec(task="lab_math", hidden=16, layers=1, heads=2, steps=3, batch=4, train_problems=20, warmup=1)


@pytest.mark.slow
def test_policy_training_is_deterministic_cached_and_loads_as_a_policy(tmp_path):
    from prmbench.policies.hf import HFPolicy
    from prmbench.types import GenRequest

    a = train_policy(TINY, tmp_path / "a", progress=False)
    b = train_policy(TINY, tmp_path / "b", progress=False)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    stamp = (a / "model.safetensors").stat().st_mtime_ns
    assert train_policy(TINY, tmp_path / "a", progress=False) == a  # cached: nothing retrained
    assert (a / "model.safetensors").stat().st_mtime_ns == stamp
    log = json.loads((a / "train_log.json").read_text())
    assert len(log["losses"]) == 3 and log["train_flops"] == 6 * log["parameters"] * log["train_tokens"]
    # The policy tokenizes its prompt exactly as the trainer did (one token per character).
    policy = HFPolicy(str(a), device="cpu", dtype="float32")
    task = make_task(TINY, "test", 2)
    p = task.load()[0]
    assert len(policy.prompt_ids(task.prompt(p))) == len(policy.render_prompt(task.prompt(p)))
    gens = policy.generate([GenRequest(messages=task.prompt(p), max_tokens=8, seed=0)])
    assert gens[0][0].completion_tokens <= 8


def test_policy_spec_errors_name_the_fix():
    with pytest.raises(ConfigError, match="task must be one of"):
        train_policy(PolicySpec(task="math500"), Path("/nonexistent"))
    with pytest.raises(ConfigError, match="multiple of heads"):
        train_policy(PolicySpec(hidden=30, heads=4), Path("/nonexistent"))


@pytest.mark.slow
@pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))
def test_quick_lab_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["lab", "--quick", "--output", str(out)]) == 0
    summary = json.loads((out / "lab_summary.json").read_text())
    assert set(summary["domains"]) == {"lab_math", "lab_code"}
    for name, dom in summary["domains"].items():
        assert set(dom["cells"]) == {"prm", "random", "majority", "oracle", "single"}
        for key, rel in dom["cells"].items():
            cell = out / rel
            rows = [json.loads(x) for x in (cell / "samples.jsonl").read_text().splitlines()]
            metrics = json.loads((cell / "metrics.json").read_text())
            # Every number in the summary is recomputable from the cell's records.
            assert dom["accuracy"][key] == round(sum(r["correct"] for r in rows) / len(rows), 4)
            assert metrics["n"] == len(rows) == dom["n_problems"] == 6
            assert all(r["task"] == name for r in rows)
        assert "prm" in dom["cells"]["prm"] or "value_head" in dom["cells"]["prm"]
        assert dom["checks"]["oracle_at_least_prm"] == (dom["accuracy"]["oracle"] >= dom["accuracy"]["prm"])
    labels = [json.loads(x) for x in (out / "labels" / "lab_math-both.jsonl").read_text().splitlines()]
    # One solution per train-split problem (a solution without any step has nothing to label).
    assert 1 <= len(labels) <= 6 and all(len(r["annotators"]) == 2 for r in labels)
    assert {r["problem_id"] for r in labels} <= {f"lab_math/train/{i}" for i in range(6)}
    times = json.loads((out / "lab_times.json").read_text())
    assert set(times) == {"policies", "labels", "prms", "stepeval", "search", "similarity", "summary"}
    # The training sets: annotator a's own labels of every solution (unfiltered) or of the solutions
    # both annotators agree on (filtered), each followed by that annotator's graded rollouts.
    for name, keep in (("lab_math", lambda r: True), ("lab_math-filtered", lambda r: r["consensus"]["agree"])):
        rows = [json.loads(x) for x in (out / "labels" / f"{name}.jsonl").read_text().splitlines()]
        main_rows = [r for r in rows if r.get("source") != "rollout"]
        assert [r["problem_id"] for r in main_rows] == [r["problem_id"] for r in labels if keep(r)]
        for mine, row in zip(main_rows, [r for r in labels if keep(r)]):
            a = row["per_annotator"][row["annotators"][0]["name"]]
            assert (mine["labels"], mine["first_error"], mine["steps"]) == (a["labels"], a["first_error"], row["steps"])
        for r in rows:
            if r.get("source") == "rollout":  # a correct rollout is good throughout, a wrong one bad at its end
                assert r["labels"] == ([1.0] * len(r["steps"]) if r["solution_correct"]
                                       else [None] * (len(r["steps"]) - 1) + [0.0])
    # PRMs come from train-prm (its record, complete) on the label file named by the PRM.
    for name, folder in summary["prms"].items():
        record = json.loads((Path(folder) / "prmbench_training.json").read_text())
        assert record["status"] == "complete" and record["steps"] == 10
        [src] = record["data"]
        assert src["path"].endswith("-filtered.jsonl") == name.endswith("_filtered")
    # Table 2: S for the four pairs under both reference models, recomputable from similarity.json.
    sim = json.loads((out / "similarity.json").read_text())
    assert set(sim["S"]) == {"lab_math_policy_a", "lab_code_policy_a"} and summary["similarity"] == sim
    assert all(len(per) == 4 for per in sim["S"].values())
    assert {f.name for f in (out / "figures").iterdir()} >= {
        "accuracy_vs_budget_lab_math.png", "accuracy_vs_wall_time_lab_code.png", "bon_per_training_set.png",
        "prm_size_flops.png"}
    models = sorted((out / "models").iterdir())
    assert sum(1 for m in models if m.name.startswith("policy-")) == 4
    stamps = {m.name: (m / "model.safetensors").stat().st_mtime_ns for m in models if m.name.startswith("policy-")}
    capsys.readouterr()
    # A second run re-trains and re-runs nothing.
    assert main(["lab", "--quick", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("done before, skipped") == 7
    assert stamps == {m.name: (m / "model.safetensors").stat().st_mtime_ns
                      for m in (out / "models").iterdir() if m.name.startswith("policy-")}
    # Another configuration in the same folder is refused with the fix.
    assert main(["lab", "--quick", "--seed", "1", "--output", str(out)]) == 2
    assert "--output" in capsys.readouterr().err
