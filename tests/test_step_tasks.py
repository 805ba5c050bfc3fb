"""Step-level tasks on the real shared data: parsing, counts, limits, calibration and bad input."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from prmbench.errors import ConfigError, DataError
from prmbench.plugins import build_registry
from prmbench.step_eval import best_threshold, evaluate_step_task, processbench_metrics
from prmbench.tasks.prm800k_test import PRM800KTestTask, raw_items
from prmbench.tasks.processbench import ProcessBenchTask


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


@pytest.fixture(scope="module")
def random_rm(registry):
    return registry.build("rm", "random")


# README counts: erroneous / correct
PB_COUNTS = {"gsm8k": (207, 193), "math": (594, 406), "olympiadbench": (661, 339), "omnimath": (759, 241)}


@pytest.mark.parametrize("subset", list(PB_COUNTS))
def test_processbench_subsets_parse_with_the_papers_counts(registry, subset):
    task = registry.build("task", f"processbench_{subset}")
    items = task.load_items()
    labels = Counter(int(i.gold["label"]) >= 0 for i in items)
    assert (labels[True], labels[False]) == PB_COUNTS[subset]
    assert all(i.subset == subset and i.id.startswith(subset) for i in items)
    assert all(-1 <= i.gold["label"] < len(i.steps) for i in items)


def test_processbench_all_holds_four_subsets_and_limit_takes_both_classes(registry):
    task = registry.build("task", "processbench")
    items = task.load_items()
    assert len(items) == 3400 and len({i.id for i in items}) == 3400
    chosen = task.select(items, 6)
    by = Counter((i.subset, int(i.gold["label"]) >= 0) for i in chosen)
    assert all(by[(s, True)] == 3 and by[(s, False)] == 3 for s in PB_COUNTS)


def test_processbench_row_shape_errors_name_the_row_and_field(tmp_path, registry):
    rows = [{"id": "a-0", "problem": "q", "steps": ["s1", "s2"], "label": -1},
            {"id": "a-1", "problem": "q", "steps": ["s1", "s2"], "label": 2}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))
    task = registry.build("task", "processbench_math", {"data_file": str(path)})
    with pytest.raises(DataError, match=r"row 1 \(id 'a-1'\): field `label` must be -1 or a step index below 2"):
        task.load_items()
    path.write_text(json.dumps([{"id": "b", "problem": "q", "steps": "one string", "label": -1}]))
    with pytest.raises(DataError, match=r"row 0 \(id 'b'\): field `steps` must be a non-empty list"):
        registry.build("task", "processbench_math", {"data_file": str(path)}).load_items()
    path.write_text(json.dumps([{"id": "c", "steps": ["x"], "label": -1}]))
    with pytest.raises(DataError, match=r"missing field `problem`"):
        registry.build("task", "processbench_math", {"data_file": str(path)}).load_items()


def test_threshold_and_calibrate_on_are_checked(registry):
    with pytest.raises(ConfigError, match="threshold must be a number in"):
        registry.build("task", "processbench_gsm8k", {"threshold": 1.5})
    with pytest.raises(ConfigError, match="calibrate_on must be one of"):
        registry.build("task", "processbench", {"calibrate_on": "gsm9k"})
    with pytest.raises(ConfigError, match="is the subset being evaluated.*f1_oracle_threshold"):
        registry.build("task", "processbench_math", {"calibrate_on": "math"})


def test_calibration_picks_the_f1_best_threshold_on_one_subset_and_applies_it_to_the_others(registry, random_rm):
    from prmbench.step_runner import score_step_items

    task = registry.build("task", "processbench", {"calibrate_on": "gsm8k"})
    task.name = "processbench"
    items = task.select(task.load_items(), 40)
    final, m = task.evaluate(score_step_items(task, random_rm, items))
    cal = [r for r in final if r["subset"] == "gsm8k"]
    t, f1 = best_threshold(cal)
    assert m["threshold"] == t and m["calibration"] == {"subset": "gsm8k", "threshold": t, "n": 40, "f1_in_sample": f1}
    assert set(m["subsets"]) == {"math", "olympiadbench", "omnimath"}  # gsm8k is never reported as a result
    for s, sm in m["subsets"].items():
        assert sm == processbench_metrics([r for r in final if r["subset"] == s], t)
    assert m["f1"] == pytest.approx(sum(sm["f1"] for sm in m["subsets"].values()) / 3)
    assert all(r["predicted"] == next((i for i, x in enumerate(r["step_scores"]) if x < t), -1) for r in final)

    single = registry.build("task", "processbench_math", {"calibrate_on": "gsm8k"})
    single.name = "processbench_math"
    items = single.select(single.load_items(), 40)
    assert {i.subset for i in items} == {"math", "gsm8k"}
    _, m1 = single.evaluate(score_step_items(single, random_rm, items))
    assert m1["threshold"] == t and m1["n"] == 40 and m1["threshold_source"].startswith("calibrated")


def test_prm800k_rating600_offline(registry):
    items = registry.build("task", "prm800k_test").load_items()
    assert len(items) == 600
    assert Counter(i.gold["rating"] for i in items) == {-1: 200, 0: 200, 1: 200}
    assert all(0 <= i.gold["target_index"] < len(i.steps) for i in items)


def test_prm800k_raw_rows_follow_the_chosen_path(shared_data_dir):
    """The raw phase-2 sample row (line 1 of phase2_test.jsonl) gives the rating600 step it shares."""
    task = PRM800KTestTask(data_file=str(shared_data_dir / "prm800k" / "samples_prm800k.jsonl"))
    items = task.load_items()
    assert items and all(i.gold["rating"] in (-1, 0, 1) for i in items)
    r600 = PRM800KTestTask(source="rating600").load_items()[0]  # Senate committee, step 6 rated -1
    same = [i for i in items if i.question == r600.question and i.steps == r600.steps[: r600.gold["target_index"] + 1]]
    assert [i.gold["rating"] for i in same] == [r600.gold["rating"]] == [-1]


def test_prm800k_raw_conventions_hand_made():
    row = {"question": {"problem": "Q"}, "label": {"steps": [
        {"completions": [{"text": "a", "rating": 1}, {"text": "a2", "rating": -1}], "chosen_completion": 0},
        {"completions": [{"text": "b", "rating": 0}], "human_completion": None, "chosen_completion": 0},
        {"completions": [{"text": "c", "rating": -1}], "human_completion": {"text": "h"}, "chosen_completion": None},
        {"completions": [{"text": "d", "rating": None}], "chosen_completion": 0},
        {"completions": [{"text": "e", "rating": -1}], "chosen_completion": None},
        {"completions": [{"text": "never", "rating": 1}], "chosen_completion": 0},
    ]}}
    got = [(i.steps, i.gold["rating"], i.gold["target_index"]) for i in raw_items("f:1", row, 1)]
    assert got == [(("a",), 1, 0), (("a2",), -1, 0), (("a", "b"), 0, 1), (("a", "b", "c"), -1, 2),
                   (("a", "b", "h", "d", "e"), -1, 4)]  # "d" is unrated but on the path; "never" is after the stop
    with pytest.raises(DataError, match=r"label.steps\[0\].completions\[0\]: field `rating` must be -1, 0, 1 or null"):
        raw_items("f:1", {"question": {"problem": "Q"}, "label": {"steps": [{"completions": [{"text": "x", "rating": 2}]}]}},
                  1)


def test_prm800k_bad_row_names_the_format(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(DataError, match=r"x.jsonl:1: neither a raw PRM800K row"):
        PRM800KTestTask(data_file=str(p)).load_items()
    p.write_text(json.dumps({"step_id": "s", "problem": "q", "steps": ["a"], "target_index": 3, "human_rating": 1}) + "\n")
    with pytest.raises(DataError, match=r"field `target_index` must be a step index below 1"):
        PRM800KTestTask(data_file=str(p)).load_items()


def test_prm800k_raw_download_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PRMBENCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(DataError, match="phase2_test.jsonl is not cached and the network is off"):
        PRM800KTestTask(source="raw").load_items()


def test_prm800k_raw_download_checks_the_official_sha256(monkeypatch, tmp_path):
    import http.server
    import threading

    from prmbench.tasks import prm800k_test

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "phase2_test.jsonl").write_text("not the real file\n")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            monkeypatch.delenv(var, raising=False)
        url = f"http://127.0.0.1:{server.server_address[1]}/phase2_test.jsonl"
        with pytest.raises(DataError, match="not the official 6b172efa"):
            prm800k_test.download_raw(2, url=url, dest_dir=tmp_path / "cache")
        assert not (tmp_path / "cache" / "prm800k" / "phase2_test.jsonl").exists()
    finally:
        server.shutdown()


def test_prmbench_items_follow_the_benchmark(registry):
    items = registry.build("task", "prmbench_prm800k").load_items()
    counts = Counter(i.subset for i in items)
    assert counts["correct"] == 758 and sum(counts.values()) - counts["correct"] == 6211
    assert counts["multi_solutions"] == 160 and counts["redundency"] == 758
    assert all(not i.gold["error_steps"] for i in items if i.subset in ("correct", "multi_solutions"))
    assert all(i.gold["error_steps"] for i in items if i.subset not in ("correct", "multi_solutions"))
    task = registry.build("task", "prmbench_prm800k")
    assert Counter(i.subset for i in task.select(task.load_items(), 3)) == {c: 3 for c in counts}


def test_prmbench_bad_error_steps_are_refused(tmp_path):
    from prmbench.tasks.prmbench_prm800k import PRMBenchTask

    row = {"idx": "x_0", "classification": "confidence", "modified_question": "q", "modified_process": ["a", "b"],
           "error_steps": [0], "original_question": "q", "original_process": ["a"]}
    (tmp_path / "f.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"f.jsonl:1 \(idx 'x_0'\): field `error_steps` must hold 1-based"):
        PRMBenchTask(data_file=str(tmp_path)).load_items()


def test_evaluate_step_task_api(random_rm):
    m = evaluate_step_task("processbench_gsm8k", random_rm, limit=20)
    assert m["n"] == 20 and {"f1", "error_acc", "correct_acc", "auroc"} <= set(m)
    m = evaluate_step_task("prm800k_test", random_rm, limit=30)
    assert m["n"] == 30 and m["auroc"] is not None
    with pytest.raises(ConfigError, match="not a step-level task"):
        evaluate_step_task("math500", random_rm)


def test_evaluate_step_task_refuses_an_orm(registry):
    with pytest.raises(ConfigError, match="outcome reward model"):
        evaluate_step_task("processbench_gsm8k", registry.build("rm", "oracle"), limit=2)
