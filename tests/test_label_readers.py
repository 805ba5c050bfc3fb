"""Readers of step-labelled data: PRM800K raw, Math-Shepherd, ProcessBench, prmbench label files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prmbench.errors import DataError
from prmbench.labels.readers import read_labels, read_prm800k


def _sample(shared_data_dir: Path, rel: str) -> Path:
    path = shared_data_dir / rel
    if not path.is_file():
        pytest.skip(f"{path} not found (set PRMBENCH_DATA_DIR to the shared data folder)")
    return path


def test_processbench_labels_follow_the_first_error(shared_data_dir: Path) -> None:
    path = _sample(shared_data_dir, "processbench/gsm8k.json")
    raw = json.loads(path.read_text())
    sols = list(read_labels(f"processbench:{path}"))
    assert len(sols) == len(raw) == 400
    for row, sol in zip(raw, sols):
        assert sol.problem_id == row["id"] and sol.steps == tuple(row["steps"]) and sol.question == row["problem"]
        err = row["label"]
        if err == -1:
            assert sol.labels == (1.0,) * len(row["steps"]) and sol.first_error is None
        else:
            assert sol.labels[:err] == (1.0,) * err and sol.labels[err] == 0.0
            assert all(v is None for v in sol.labels[err + 1:]) and sol.first_error == err
    # each solution names the line its array element starts on
    lines = path.read_text().splitlines()
    start = sols[5].meta["line"]
    assert lines[start - 1].strip() == "{" and '"id": "gsm8k-5"' in "\n".join(lines[start:start + 60])


def test_math_shepherd_tags_and_marks(shared_data_dir: Path) -> None:
    path = _sample(shared_data_dir, "math_shepherd/samples_math_shepherd.jsonl")
    sols = list(read_labels(f"math_shepherd:{path}"))
    assert len(sols) == 7
    first = sols[0]
    assert first.question.endswith("than clarinet lessons in a year?")
    assert first.steps[0] == "Janet spends 3 hours + 5 hours = <<3+5=8>>8 hours per week on music lessons."
    assert first.steps[-1].endswith("The answer is: 13520")
    assert first.labels == (1.0, 1.0, 1.0, 1.0, 0.0)
    for line, sol in enumerate(sols, start=1):
        row = json.loads(path.read_text().splitlines()[line - 1])
        assert len(sol.steps) == row["input"].count("ки")
        assert sol.labels.count(1.0) == row["label"].count(" +\n") + row["label"].endswith(" +")
        assert sol.meta["line"] == line


def test_prm800k_phase1_and_phase2(shared_data_dir: Path) -> None:
    path = _sample(shared_data_dir, "prm800k/samples_prm800k.jsonl")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    sols = list(read_labels(f"prm800k:{path}"))
    assert len(sols) == 6
    # row 1 (phase 1): step 2 was written by the labeller (all completions rejected)
    assert sols[0].meta["phase"] == 1 and sols[0].meta["human_steps"] == [1]
    assert sols[0].steps[1] == rows[0]["label"]["steps"][1]["human_completion"]["text"]
    assert sols[0].steps[5] == rows[0]["label"]["steps"][5]["completions"][4]["text"]
    # row 2 (phase 2, found_error): a neutral step 2, the path ends at the -1 step
    p2 = sols[1]
    assert p2.meta["phase"] == 2 and p2.meta["finish_reason"] == "found_error"
    assert rows[1]["label"]["steps"][1]["completions"][0]["rating"] == 0
    assert p2.labels == (1.0,) * 6 + (0.0,) and p2.first_error == 6
    assert p2.steps[-1] == rows[1]["label"]["steps"][6]["completions"][0]["text"]
    # give_up row: stops before the step with no completions
    assert sols[4].meta["finish_reason"] == "give_up" and len(sols[4].steps) == 8
    # the neutral convention is a parameter
    strict = list(read_prm800k(path, neutral=0.0))[1]
    assert strict.labels[1] == 0.0 and strict.first_error == 1
    assert list(read_prm800k(path, neutral=None))[1].labels[1] is None


def test_prmbench_label_file_hard_and_soft(tmp_path: Path) -> None:
    row = {"problem_id": "p1", "task": "synthetic", "question": "Q?", "steps": ["a", "b", "c"],
           "mc_values": [0.75, 0.0, None], "labels": [1.0, 0.0, None], "first_error": 1}
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (hard,) = read_labels(f"prmbench:{path}")
    assert hard.labels == (1.0, 0.0, None) and hard.first_error == 1 and hard.source == "prmbench"
    (soft,) = read_labels(f"prmbench_soft:{path}")
    assert soft.labels == (0.75, 0.0, None)


@pytest.mark.parametrize(
    "fmt,content,needle",
    [
        ("processbench", '[\n  {"id": "a", "problem": "q", "steps": ["s"], "label": -1},\n'
                         '  {"id": "b", "problem": "q", "steps": ["s"], "label": 3}\n]', ":3: field 'label'"),
        ("processbench", '{"id": "a", "problem": "q", "steps": [], "label": -1}\n', ":1: field 'steps'"),
        ("math_shepherd", '{"input": "Q Step 1: x ки", "label": "Q Step 1: x +"}\n'
                          '{"input": "Q Step 1: x ки", "label": "Q Step 1: y +"}\n', ":2: field 'label'"),
        ("math_shepherd", '{"input": "Q Step 1: x ки", "label": "Q Step 1: x ?"}\n', ":1: field 'label'"),
        ("math_shepherd", '{"label": "Q"}\n', ":1: field 'input'"),
        ("prm800k", '{"question": {"problem": "q"}, "label": {"finish_reason": "solution", "steps": '
                    '[{"completions": [{"text": "s", "rating": 2}], "chosen_completion": 0}]}}\n',
         ":1: field 'label.steps[0].completions[0].rating'"),
        ("prm800k", '{"question": {"problem": "q"}, "label": {"finish_reason": "solution", "steps": '
                    '[{"completions": [{"text": "s", "rating": 1}], "chosen_completion": 5}]}}\n',
         ":1: field 'label.steps[0].chosen_completion'"),
        ("prm800k", '{"question": {}, "label": {"steps": []}}\n', ":1: field 'question.problem'"),
        ("prmbench", '{"problem_id": "p", "question": "q", "steps": ["a"], "labels": [1.5]}\n', ":1: field 'labels[0]'"),
        ("prmbench", '{"problem_id": "p", "question": "q", "steps": ["a"], "labels": [1, 0]}\n', ":1: field 'labels'"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, fmt: str, content: str, needle: str) -> None:
    path = tmp_path / "bad.data"
    path.write_text(content)
    with pytest.raises(DataError) as e:
        list(read_labels(f"{fmt}:{path}"))
    assert str(path) + needle in str(e.value)


def test_bad_spec_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="FMT:PATH"):
        list(read_labels("nosuch:x.json"))
    with pytest.raises(DataError, match="does not exist"):
        list(read_labels(f"processbench:{tmp_path / 'missing.json'}"))
