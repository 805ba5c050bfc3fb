"""`prmbench label` (Monte Carlo step labels, binary search, ASLAF consensus, resume) and label-merge."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import pytest

from prmbench.cli import main
from prmbench.interfaces import Policy
from prmbench.labels import labelling
from prmbench.labels.labelling import LabelJob, LabelSpec, sidecar
from prmbench.labels.readers import read_labels
from prmbench.plugins import build_registry
from prmbench.registry import Entry
from prmbench.testing.synthetic import step_correct
from prmbench.types import GenRequest, Generation


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _label(tmp_path: Path, *extra: str, name: str = "labels.jsonl") -> tuple[int, Path]:
    out = tmp_path / name
    rc = main(["label", "--task", "synthetic", "--policy", "synthetic", "--output", str(out), *extra])
    return rc, out


def test_mc_values_equal_the_share_evaluate_samples_grades_correct(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _label(tmp_path, "--rollouts", "4", "--limit", "20")
    assert rc == 0
    rows = _rows(out)
    assert len(rows) == 20 and [r["problem_id"] for r in rows] == [f"synthetic/{i}" for i in range(20)]
    samples = tmp_path / "rollouts.jsonl"
    with open(samples, "w") as f:
        for r in rows:
            for i, rs in enumerate(r["rollouts"]):
                for x in rs:
                    f.write(json.dumps({"problem_id": r["problem_id"], "step": i, "completion": x["text"]}) + "\n")
    graded = tmp_path / "graded.jsonl"
    assert main(["evaluate-samples", "--task", "synthetic", "--samples", str(samples), "--output", str(graded)]) == 0
    by_step: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for g in _rows(graded):
        by_step[(g["problem_id"], g["step"])].append(g["correct"])
    values = []
    for r in rows:
        assert len(r["mc_values"]) == len(r["steps"]) == len(r["labels"]) == 4
        for i, v in enumerate(r["mc_values"]):
            grades = by_step[(r["problem_id"], i)]
            assert len(grades) == (4 if i < 3 else 1)  # the last prefix is the solution itself
            assert v == sum(grades) / len(grades)
            assert r["labels"][i] == (1.0 if v > 0 else 0.0)
            values.append(v)
        err = next((i for i, v in enumerate(r["mc_values"]) if v == 0), None)
        assert r["first_error"] == err
        assert r["annotators"][0]["name"] == "synthetic" and r["annotators"][0]["rollouts"] == 4
    assert 0 < sum(values) / len(values) < 1  # a mix of good and bad prefixes


def test_labels_match_the_synthetic_ground_truth(tmp_path: Path) -> None:
    """A prefix with a wrong step can never recover (value 0); a correct prefix of problem p has
    value p_step ** (remaining steps), which 64 rollouts estimate closely on average."""
    rc, out = _label(tmp_path, "--rollouts", "64", "--limit", "30", "--task-args", "p_step=0.8")
    assert rc == 0
    errs = []
    for r in _rows(out):
        steps, n = r["steps"], len(r["steps"])
        for i in range(n - 1):
            ok = all(step_correct(s) for s in steps[: i + 1])
            if not ok:
                assert r["mc_values"][i] == 0.0 and r["labels"][i] == 0.0
            else:
                errs.append(r["mc_values"][i] - 0.8 ** (n - 1 - i))
        assert r["solution_correct"] == all(step_correct(s) for s in steps) == (r["mc_values"][-1] == 1.0)
    assert len(errs) > 20 and abs(sum(errs) / len(errs)) < 0.03


def test_label_flops_are_recomputable_from_the_spend(tmp_path: Path) -> None:
    rc, out = _label(tmp_path, "--rollouts", "3", "--limit", "5")
    rows = _rows(out)
    params = rows[0]["annotators"][0]["policy"]["num_parameters"]
    for r in rows:
        s = r["spend"]
        assert r["label_flops"] == s["flops"] == 2.0 * params * (s["prompt_tokens"] + s["generated_tokens"])
        # one solution + 3 rollouts for each of the 3 prefixes before the last
        assert s["policy_calls"] == 1 + 3 * (len(r["steps"]) - 1)
        per = r["per_annotator"]["synthetic"]["spend"]
        assert per["flops"] + r["solution_spend"]["flops"] == pytest.approx(s["flops"])
    meta = json.loads(sidecar(out, "meta.json").read_text())
    assert meta["status"] == "complete" and meta["totals"]["kept"] == 5
    assert meta["totals"]["label_flops"] == pytest.approx(sum(r["label_flops"] for r in rows))


def test_binary_search_finds_the_first_error_in_log_steps(tmp_path: Path) -> None:
    args = ("--rollouts", "8", "--limit", "25", "--task-args", "n_steps=8,p_step=0.9")
    assert _label(tmp_path, *args, name="lin.jsonl")[0] == 0
    assert _label(tmp_path, *args, "--search", "binary", name="bin.jsonl")[0] == 0
    lin, binary = _rows(tmp_path / "lin.jsonl"), _rows(tmp_path / "bin.jsonl")
    found_error = monotone = 0
    for a, b in zip(lin, binary):
        assert a["steps"] == b["steps"] and b["search"] == "binary"
        evaluated = [i for i, v in enumerate(b["mc_values"]) if v is not None]
        assert 1 <= len(evaluated) <= math.ceil(math.log2(8 + 1))
        for i in evaluated:  # the same seeds and prefixes: the same estimates
            assert b["mc_values"][i] == a["mc_values"][i]
        err = b["first_error"]
        assert err is None or b["mc_values"][err] == 0.0
        # where the estimates never recover after a 0, binary and linear search agree (a correct
        # prefix can still draw 0 of K correct rollouts, and then a later one can recover)
        lin_err = a["first_error"]
        if lin_err is None or not any(a["mc_values"][lin_err:]):
            monotone += 1
            assert err == lin_err
        if err is None:
            assert b["labels"] == [1.0] * 8
        else:
            found_error += 1
            assert b["labels"] == [1.0] * err + [0.0] + [None] * (7 - err)
    assert found_error >= 5 and monotone >= 20
    binary_calls = sum(r["spend"]["policy_calls"] for r in binary)
    assert binary_calls < 0.6 * sum(r["spend"]["policy_calls"] for r in lin)


def _presets(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir(exist_ok=True)
    (d / "annotators.yaml").write_text(
        "presets:\n"
        "  - {name: rambler, kind: policy, family: synthetic, args: {ramble: 0.4}}\n"
        "  - {name: terse, kind: policy, family: synthetic, args: {step_tokens: 4}}\n")
    return d


def test_consensus_all_keeps_only_agreeing_first_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inc = str(_presets(tmp_path))
    common = ["--policy", "synthetic,rambler", "--rollouts", "4", "--limit", "30", "--max-tokens", "64",
              "--include-path", inc]
    out_all = tmp_path / "all.jsonl"
    assert main(["label", "--task", "synthetic", *common, "--consensus", "all", "--output", str(out_all)]) == 0
    assert "dropped by --consensus all" in capsys.readouterr().err
    out_none = tmp_path / "none.jsonl"
    assert main(["label", "--task", "synthetic", *common, "--output", str(out_none)]) == 0
    kept, dropped, every = _rows(out_all), _rows(sidecar(out_all, "dropped.jsonl")), _rows(out_none)
    assert len(every) == 30 and len(kept) + len(dropped) == 30 and kept and dropped
    for r in kept + dropped:
        errs = r["consensus"]["first_errors"]
        assert set(errs) == {"synthetic", "rambler"}
        assert errs == {n: a["first_error"] for n, a in r["per_annotator"].items()}
        assert r["consensus"]["agree"] == (len(set(errs.values())) == 1)
        # pooled values: the share over both annotators' stored rollouts
        for i, rs in enumerate(r["rollouts"]):
            assert {x["annotator"] for x in rs} == {"synthetic", "rambler"}
            assert r["mc_values"][i] == sum(x["correct"] for x in rs) / len(rs)
    assert all(r["consensus"]["agree"] for r in kept) and not any(r["consensus"]["agree"] for r in dropped)
    assert [r["problem_id"] for r in every if r["consensus"]["agree"]] == [r["problem_id"] for r in kept]
    meta = json.loads(sidecar(out_all, "meta.json").read_text())
    assert meta["totals"]["kept"] == len(kept) and meta["totals"]["dropped"] == len(dropped)
    # the read-back labels of kept rows: the first error both annotators agree on
    for sol, r in zip(read_labels(f"prmbench:{out_all}"), kept):
        assert sol.first_error == r["first_error"] == r["per_annotator"]["synthetic"]["first_error"]


@pytest.mark.parametrize("flags,needle", [
    (("--consensus", "all"), "--policy A,B"),
    (("--search", "ternary"), "--search must be one of linear, binary"),
    (("--rollouts", "0"), "--rollouts must be a positive integer"),
    (("--temperature", "0", "--rollouts", "4"), "use --temperature > 0 or --rollouts 1"),
    (("--policy", "synthetic,synthetic"), "names an annotator twice"),
    (("--samples", "no/such.jsonl"), "--samples no/such.jsonl does not exist"),
])
def test_bad_flags_exit_2_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...],
                                       needle: str) -> None:
    rc, out = _label(tmp_path, *flags)
    assert rc == 2 and needle in capsys.readouterr().err and not out.exists()


def test_several_solutions_per_problem(tmp_path: Path) -> None:
    rc, out = _label(tmp_path, "--rollouts", "2", "--limit", "3", "--solutions", "3")
    rows = _rows(out)
    assert rc == 0 and [(r["problem_id"], r["solution_index"]) for r in rows] == \
        [(f"synthetic/{i}", j) for i in range(3) for j in range(3)]
    assert len({r["text"] for r in rows}) > 3  # different samples of the same problem


class _Interrupt(Exception):
    pass


def test_resume_continues_without_recomputing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = build_registry()
    spec = LabelSpec(task="synthetic", policies=("synthetic",), rollouts=3, limit=20)
    full = LabelJob(spec, reg, tmp_path / "full.jsonl").run()
    monkeypatch.setattr(labelling, "LABEL_CHUNK", 4)
    part = tmp_path / "part.jsonl"
    original = labelling.LabelSolver.label
    calls = {"n": 0}

    def flaky(self, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Interrupt("killed")
        return original(self, *a, **k)

    monkeypatch.setattr(labelling.LabelSolver, "label", flaky)
    with pytest.raises(_Interrupt):
        LabelJob(spec, reg, part).run()
    assert len(_rows(part)) == 8
    assert json.loads(sidecar(part, "meta.json").read_text())["status"] == "failed: _Interrupt"
    # a torn last line (a crash mid-write) is cut and that solution relabelled
    with open(part, "a") as f:
        f.write('{"problem_id": "synthetic/8", "solut')
    monkeypatch.setattr(labelling.LabelSolver, "label", original)
    generated: list[int] = []
    real_generate = type(reg.build("policy", "synthetic")).generate

    def counting(self, requests, problem_ids=None):  # type: ignore[no-untyped-def]
        generated.append(len(requests))
        return real_generate(self, requests, problem_ids)

    monkeypatch.setattr(type(reg.build("policy", "synthetic")), "generate", counting)
    with pytest.raises(Exception, match="--resume"):
        LabelJob(spec, reg, part).run()
    LabelJob(spec, reg, part, resume=True).run()
    assert _rows(part) == _rows(full)
    # chunk 3 had been generated before the interruption: only chunks 4 and 5 are new samples
    assert sum(generated) == 4 * 3 * 3 + 8 * (1 + 3 * 3)
    other = LabelSpec(task="synthetic", policies=("synthetic",), rollouts=5, limit=20)
    with pytest.raises(Exception, match="different configuration"):
        LabelJob(other, reg, part, resume=True).run()


def test_label_stored_solutions_from_samples(tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    good = "Step 1: a [ok]\n\nStep 2: b [ok]\n\nStep 3: c [ok]\n\nStep 4: answer \\boxed{272} [ok]"
    rows = [{"problem_id": "synthetic/0", "completion": good},
            {"problem_id": "synthetic/0", "steps": ["Step 1: a [ok]", "Step 2: b [slip]", "Step 3: c [slip]",
                                                    "Step 4: answer \\boxed{273} [slip]"]}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "l.jsonl"
    assert main(["label", "--task", "synthetic", "--policy", "synthetic", "--samples", str(samples),
                 "--rollouts", "8", "--output", str(out)]) == 0
    a, b = _rows(out)
    assert (a["solution_index"], b["solution_index"]) == (0, 1) and a["solution_source"].endswith("s.jsonl:1")
    assert a["solution_correct"] and a["mc_values"][-1] == 1.0 and a["first_error"] is None
    assert b["mc_values"][1:] == [0.0, 0.0, 0.0] and b["first_error"] == 1 and b["mc_values"][0] > 0
    assert a["solution_spend"]["flops"] == 0  # stored solutions cost nothing to generate
    # --limit keeps the rows of the first K problems; an id the task does not have is an error
    other = tmp_path / "other.jsonl"
    other.write_text(samples.read_text() + json.dumps({"problem_id": "synthetic/5", "completion": good}) + "\n")
    out2 = tmp_path / "l2.jsonl"
    assert main(["label", "--task", "synthetic", "--policy", "synthetic", "--samples", str(other),
                 "--rollouts", "8", "--limit", "1", "--output", str(out2)]) == 0
    assert [r["problem_id"] for r in _rows(out2)] == ["synthetic/0"] * 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": "synthetic/0"}\n')
    assert main(["label", "--task", "synthetic", "--policy", "synthetic", "--samples", str(bad),
                 "--output", str(tmp_path / "x.jsonl")]) == 2


def test_whole_solution_policies_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"problem_id": "synthetic/0", "completions": ["x"]}\n')
    assert main(["label", "--task", "synthetic", "--policy", f"replay:{pool}", "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "--samples" in capsys.readouterr().err


def test_test_splits_warn(capsys: pytest.CaptureFixture[str]) -> None:
    reg = build_registry()
    msgs: list[str] = []
    labelling.warn_if_test_split(reg.build("task", "math500"), msgs.append)
    labelling.warn_if_test_split(reg.build("task", "synthetic"), msgs.append)
    assert len(msgs) == 1 and "math500" in msgs[0] and "must not train a PRM" in msgs[0]


def test_label_merge_equal_size_and_dedup(tmp_path: Path, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pb = shared_data_dir / "processbench" / "gsm8k.json"
    ms = shared_data_dir / "math_shepherd" / "samples_math_shepherd.jsonl"
    if not pb.is_file() or not ms.is_file():
        pytest.skip("shared ProcessBench / Math-Shepherd samples not found")
    raw = json.loads(pb.read_text())
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps(raw[:10] + [{**raw[3], "id": "copy-of-3", "problem": "  " + raw[3]["problem"]}]))
    out = tmp_path / "mix.jsonl"
    srcs = [f"processbench:{pb}", f"processbench:{dup}", f"math_shepherd:{ms}"]
    assert main(["label-merge", *srcs, "--equal-size", "5", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("fewer than --equal-size") == 1 and "dup.json has 0 unique solutions" in err
    rows = _rows(out)
    assert [r["source"] for r in rows] == ["processbench"] * 5 + ["math_shepherd"] * 5
    meta = json.loads(sidecar(out, "meta.json").read_text())
    assert [c["duplicates"] for c in meta["sources"]] == [0, 11, 0]  # every row of dup.json repeats gsm8k.json
    assert [c["written"] for c in meta["sources"]] == [5, 0, 5]
    again = tmp_path / "again.jsonl"
    assert main(["label-merge", *srcs, "--equal-size", "5", "--output", str(again)]) == 0
    assert again.read_text() == out.read_text()  # seeded
    merged = list(read_labels(f"prmbench:{out}"))
    by_id = {r["id"]: r for r in raw}
    for sol in merged[:5]:
        src = by_id[sol.problem_id]
        assert sol.steps == tuple(src["steps"]) and sol.first_error == (None if src["label"] == -1 else src["label"])
    assert main(["label-merge", f"processbench:{dup}", "--equal-size", "50", "--output", str(tmp_path / "m.jsonl")]) == 0
    assert "fewer than --equal-size 50" in capsys.readouterr().err


class _ScriptedCoder(Policy):
    """Continues any prefix of a HumanEval/0 solution with a right (even seed) or wrong (odd) program."""

    name = "scripted"

    RIGHT = ("```python\ndef has_close_elements(numbers, threshold):\n"
             "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```")
    WRONG = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"

    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str] | None = None) -> list[list[Generation]]:
        out = []
        for r in requests:
            gens = []
            for i in range(r.n):
                seed = r.seed + i
                body = self.RIGHT if seed % 2 == 0 else self.WRONG
                text = body if r.prefix else "I check every pair.\n\n" + self.WRONG
                gens.append(Generation(text=text, finish_reason="eos", prompt_tokens=10, completion_tokens=20, seed=seed))
            out.append(gens)
        return out


@pytest.mark.slow
def test_code_task_rollouts_are_graded_in_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    reg = build_registry()
    reg.add(Entry(kind="policy", name="scripted", origin="test", factory=_ScriptedCoder))
    spec = LabelSpec(task="humaneval_plus", policies=("scripted",), rollouts=6, limit=1,
                     task_args={"workers": 2})
    out = LabelJob(spec, reg, tmp_path / "code.jsonl").run()
    (row,) = _rows(out)
    assert row["problem_id"] == "HumanEval/0" and len(row["steps"]) == 2
    rs = row["rollouts"][0]
    assert len(rs) == 6 and all(x["text"].startswith("I check every pair.\n\n```python") for x in rs)
    assert [x["correct"] for x in rs] == [("return any" in x["text"]) for x in rs]
    assert row["mc_values"][0] == sum(x["correct"] for x in rs) / 6 and 0 < row["mc_values"][0] < 1
    assert row["mc_values"][1] == 0.0 and row["first_error"] == 1 and not row["solution_correct"]
    from prmbench.cache import Cache, cache_key

    cache = Cache(sidecar(out, "cache.sqlite"))
    task = reg.build("task", "humaneval_plus", {"workers": 2})
    try:
        details = cache.get(cache_key("grade", task.cache_id(), "HumanEval/0", rs[0]["text"]))["details"]
        assert details["isolation"] == task.sandbox.isolation and "base_status" in details
    finally:
        cache.close()
        task.close()


@pytest.mark.slow
def test_hf_policy_labels_math500_and_warns_on_the_test_split(tmp_path: Path, tiny_model_dir: Path,
                                                               shared_data_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    if not (shared_data_dir / "math500" / "test.jsonl").is_file():
        pytest.skip("shared MATH-500 file not found")
    reg = build_registry()
    task = reg.build("task", "math500")
    problems = {p.id: p for p in task.load()[:2]}
    # solutions from the policy (one step each: a random tiny model writes no blank line) and stored
    # three-step solutions, whose rollouts the policy writes
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"problem_id": pid, "steps": ["Let us think.", "We compute.",
                                           f"The answer is $\\boxed{{{p.reference}}}$."]}) + "\n"
                               for pid, p in problems.items()))
    rows = []
    for name, extra in (("m.jsonl", []), ("s.jsonl", ["--samples", str(samples)])):
        out = tmp_path / "labels" / name
        assert main(["label", "--task", "math500", "--policy", f"hf:{tiny_model_dir}", "--rollouts", "2",
                     "--limit", "2", "--max-tokens", "24", "--temperature", "1.0", "--output", str(out), *extra]) == 0
        assert "warning: task 'math500' is an evaluation (test) split" in capsys.readouterr().err
        rows += _rows(out)
    assert {r["problem_id"] for r in rows} == set(problems) and len(rows) == 4
    assert [r["solution_correct"] for r in rows[2:]] == [True, True]
    params = rows[0]["annotators"][0]["policy"]["num_parameters"]
    assert params > 0
    for r in rows:
        assert r["question"] == problems[r["problem_id"]].question
        for i, rs in enumerate(r["rollouts"]):
            assert len(rs) == (2 if i < len(r["steps"]) - 1 else 1)
            assert [x["correct"] for x in rs] == [g.correct for g in task.grade_many([(problems[r["problem_id"]], x["text"]) for x in rs])]
            assert r["mc_values"][i] == sum(x["correct"] for x in rs) / len(rs)
            if i < len(r["steps"]) - 1:
                prefix = "\n\n".join(r["steps"][: i + 1]) + "\n\n"
                assert all(x["text"].startswith(prefix) for x in rs)
        s = r["spend"]
        assert r["label_flops"] == 2.0 * params * (s["prompt_tokens"] + s["generated_tokens"]) > 0
