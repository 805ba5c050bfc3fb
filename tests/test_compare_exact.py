"""compare_exact / `prmbench compare --exact`: record-by-record equality of deterministic runs.

McNemar at p < 0.05 on a 30-problem fixture lets up to five flipped problems through; the exact
check names every flipped record and exits 1, and refuses (exit 2) runs whose configuration
identity differs.
"""

from __future__ import annotations

import json

import pytest
from run_fixtures import FakeCell, outcomes, write_run

from prmbench.cli import main
from prmbench.compare import compare_runs
from prmbench.compare_exact import ANSWER, EXTRA, MISSING, VERDICT, compare_exact, render_exact
from prmbench.errors import ConfigError, DataError
from prmbench.results import load_run

N = 30
IDS = [f"test/algebra/{i}.json" for i in range(N)]
COMPONENTS = {"policy": {"name": "replay:pool.jsonl", "class": "prmbench.policies.replay.ReplayPolicy", "version": "1",
                         "config": {"file": "pool.jsonl", "sha256": "ab" * 32}, "num_parameters": 0},
              "rms": {"oracle": {"name": "oracle", "version": "1", "config": {}, "num_parameters": 0}},
              "strategies": {"best_of_n": {"name": "best_of_n", "version": "1", "config": {"aggregation": None}}}}


def _cells(correct, other=None):
    return [FakeCell("math500", "oracle", "best_of_n", 4, correct, problem_ids=IDS),
            FakeCell("math500", "oracle", "best_of_n", 8, other if other is not None else correct, problem_ids=IDS)]


def _run(path, correct, other=None, components=COMPONENTS, **kw):
    return load_run(write_run(path, _cells(correct, other), components=components, **kw))


def _edit_record(run, cell_id, problem_id, **fields):
    """Rewrite one record of a run in place (as a changed code would have written it)."""
    samples = run.path / "cells" / cell_id / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    for r in rows:
        if r["problem_id"] == problem_id:
            r.update(fields)
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_run(run.path)


def test_identical_runs(tmp_path):
    base = outcomes(N, 12)
    cmp = compare_exact(_run(tmp_path / "a", base), _run(tmp_path / "b", base))
    assert cmp.identical and cmp.n_cells == 2 and cmp.n_records == 2 * N and cmp.changes == ()
    assert "identical: 60 records in 2 cell(s)" in render_exact(cmp)


def test_a_single_flipped_problem_is_named(tmp_path, capsys):
    base = outcomes(N, 12)
    new = list(base)
    new[3] = False  # one problem flips correct -> wrong in the n4 cell only
    a, b = _run(tmp_path / "a", base), _run(tmp_path / "b", new, other=base)
    assert not compare_runs(a, b).regressed  # invisible to the statistical test
    cmp = compare_exact(a, b)
    assert not cmp.identical and len(cmp.changes) == 1
    (change,) = cmp.flipped
    assert (change.cell, change.problem_id, change.kind, change.old, change.new) == (
        "math500--oracle--best_of_n--n4", "test/algebra/3.json", VERDICT, True, False)
    text = render_exact(cmp)
    assert "FLIPPED  math500--oracle--best_of_n--n4  test/algebra/3.json  correct -> wrong" in text
    assert "DIFFERS: 1 flipped verdict(s)" in text and "in 1 of 2 cell(s)" in text

    assert main(["compare", "--exact", str(a.path), str(b.path)]) == 1
    out = capsys.readouterr().out
    assert "test/algebra/3.json  correct -> wrong" in out
    assert main(["compare", "--exact", str(a.path), str(a.path)]) == 0


def test_five_flips_pass_mcnemar_but_not_the_exact_check(tmp_path):
    """The issue's case: five of 30 problems flip (b=5, c=0, p=0.0625) and McNemar says nothing."""
    base = outcomes(N, 20)
    new = [ok and i >= 5 for i, ok in enumerate(base)]
    a, b = _run(tmp_path / "a", base), _run(tmp_path / "b", new, other=new)
    stat = compare_runs(a, b)
    assert not stat.regressed and all(c.b == 5 and c.c == 0 for c in stat.cells)
    cmp = compare_exact(a, b)
    assert len(cmp.flipped) == 10
    assert {(c.cell, c.problem_id) for c in cmp.flipped} == {
        (f"math500--oracle--best_of_n--n{n}", f"test/algebra/{i}.json") for n in (4, 8) for i in range(5)}


def test_gains_are_changes_too(tmp_path):
    base = outcomes(N, 12)
    new = list(base)
    new[20] = True
    (change,) = compare_exact(_run(tmp_path / "a", base), _run(tmp_path / "b", new, other=base)).changes
    assert change.kind == VERDICT and (change.old, change.new) == (False, True)
    assert "wrong -> correct" in change.describe()


def test_a_changed_answer_with_the_same_verdict_is_reported(tmp_path):
    base = outcomes(N, 12)
    a, b = _run(tmp_path / "a", base), _run(tmp_path / "b", base)
    b = _edit_record(b, "math500--oracle--best_of_n--n8", "test/algebra/25.json", answer="40")
    (change,) = compare_exact(a, b).changes
    assert (change.kind, change.old, change.new, change.problem_id) == (ANSWER, "41", "40", "test/algebra/25.json")
    assert "answer '41' -> '40'" in render_exact(compare_exact(a, b))


def test_spend_and_search_internals_are_not_compared(tmp_path):
    base = outcomes(N, 12)
    a, b = _run(tmp_path / "a", base), _run(tmp_path / "b", base)
    b = _edit_record(b, "math500--oracle--best_of_n--n4", "test/algebra/0.json",
                     spend={"generated_tokens": 1, "flops": 3.0, "seconds": 99.0}, info={"rounds": [1, 2]},
                     chosen_text="another path to \\boxed{42}")
    assert compare_exact(a, b).identical


def test_missing_and_extra_records(tmp_path):
    base = outcomes(N, 12)
    a = _run(tmp_path / "a", base)
    short = load_run(write_run(tmp_path / "b", [FakeCell("math500", "oracle", "best_of_n", 4, base[:-1], problem_ids=IDS[:-1]),
                                                FakeCell("math500", "oracle", "best_of_n", 8, base + [True],
                                                         problem_ids=IDS + ["test/extra.json"])],
                               components=COMPONENTS, n_problems={"math500": N}))
    cmp = compare_exact(a, short)
    kinds = {(c.kind, c.problem_id) for c in cmp.changes}
    assert kinds == {(MISSING, IDS[-1]), (EXTRA, "test/extra.json")}
    text = render_exact(cmp)
    assert "MISSING" in text and "no record in the new run" in text and "EXTRA" in text


@pytest.mark.parametrize("where, change", [
    ("config", {"config": {"temperature": 0.8}}),
    ("config", {"config": {"limit": 20}}),
    ("policy", {"components": {**COMPONENTS, "policy": {**COMPONENTS["policy"], "config": {"sha256": "cd" * 32}}}}),
    ("strategies", {"components": {**COMPONENTS, "strategies": {"best_of_n": {"name": "best_of_n", "version": "2",
                                                                              "config": {"aggregation": None}}}}}),
    ("rms", {"components": {**COMPONENTS, "rms": {"oracle": {"name": "oracle", "version": "1", "config": {},
                                                             "num_parameters": 7}}}}),
    ("tasks", {"tasks": {"math500": {"n_problems": 29}}}),
])
def test_other_configuration_identity_refused(tmp_path, capsys, where, change):
    base = outcomes(N, 12)
    a = _run(tmp_path / "a", base)
    b = load_run(write_run(tmp_path / "b", _cells(base), **{"components": COMPONENTS, **change}))
    with pytest.raises(ConfigError, match=rf"not comparable.*{where}.*\(base\) vs .*\(new\).*regression_check.sh --update"):
        compare_exact(a, b)
    assert main(["compare", "--exact", str(a.path), str(b.path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_class_paths_and_timings_do_not_matter(tmp_path):
    base = outcomes(N, 12)
    moved = {**COMPONENTS, "policy": {**COMPONENTS["policy"], "class": "prmbench.policies.other.ReplayPolicy"}}
    a = _run(tmp_path / "a", base)
    b = _run(tmp_path / "b", base, components=moved, seed=0)
    run_json = b.path / "run.json"
    run = json.loads(run_json.read_text())
    run.update(created="2030-01-01T00:00:00+00:00", hardware={"cpu": "other"}, versions={"python": "3.12"})
    run_json.write_text(json.dumps(run))
    assert compare_exact(a, load_run(b.path)).identical


def test_no_records_refused(tmp_path):
    a = _run(tmp_path / "a", outcomes(N, 12))
    with pytest.raises(DataError, match="no records"):
        compare_exact(load_run(a.path, with_records=False), a)


def test_exact_takes_no_statistical_options(tmp_path, capsys):
    a = _run(tmp_path / "a", outcomes(N, 12))
    assert main(["compare", "--exact", "--max-drop", "0.1", str(a.path), str(a.path)]) == 2
    assert "--exact" in capsys.readouterr().err
