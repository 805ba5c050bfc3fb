"""`prmbench report`: the page's content from real run directories, and the page in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prmbench.cli import main
from prmbench.plugins import build_registry
from prmbench.results import CELLS_DIR, TREES_FILE
from prmbench.runner import RunSpec, Runner
from prmbench.testing.browser import find_chromium

STRATEGIES = ("best_of_n", "beam_search", "mcts")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=STRATEGIES, budgets=(4, 8),
                   policy="synthetic", limit=15, seed=0)
    return Runner(spec, build_registry(strict=True), tmp_path_factory.mktemp("rep") / "run", log=lambda m: None).run()


@pytest.fixture(scope="module")
def page(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "report.html"
    assert main(["report", str(run_dir), "--output", str(out)]) == 0
    return out


def _blocks(text: str) -> dict[str, object]:
    return {m.group(1): json.loads(m.group(2).replace("<\\/", "</"))
            for m in re.finditer(r'<script type="application/json" id="([^"]+)">(.*?)</script>', text, re.S)}


def test_page_is_self_contained_with_every_cell_problem_figure_and_tree(page, run_dir):
    text = page.read_text()
    assert not re.search(r'(src|href)\s*=\s*"(?!data:|#)', text)  # nothing loaded from elsewhere
    assert "<link" not in text and "@import" not in text and "url(http" not in text
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', text)) >= 3  # compute, budget, seconds
    blocks = _blocks(text)
    summary = blocks["summary"]
    assert len(summary["cells"]) == 6 and len(summary["problems"]) == 15
    assert len(re.findall(r'<tr data-cell=', text)) == 6
    for i, cell in enumerate(summary["cells"]):
        details = {k: v for name, b in blocks.items() if name.startswith(f"cell-{i}-") for k, v in b.items()}
        assert set(details) == {p["key"] for p in summary["problems"]}
        cell_id = cell["key"].split("/", 1)[1]
        trees = run_dir / CELLS_DIR / cell_id / TREES_FILE
        if "best_of_n" in cell_id:
            assert not trees.exists() and cell["n_trees"] == 0
            continue
        stored = {json.loads(line)["problem_id"]: json.loads(line) for line in trees.read_text().splitlines()}
        assert cell["n_trees"] == 15
        for key, d in details.items():  # the page's trees are the stored ones
            assert d["tree"] == stored[d["record"]["problem_id"]]
        # outcomes shown in the list are the records' own
        for key, o in summary["outcomes"][i].items():
            assert o[0] == details[key]["record"]["correct"]


def test_report_of_a_folder_that_is_no_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--output", str(tmp_path / "x.html")]) == 2
    assert "not a prmbench run directory" in capsys.readouterr().err


def test_step_level_cells_get_their_table(tmp_path, shared_data_dir):
    """A run that mixes step-level cells (TASK--RM, kind "step") and search cells: both tables."""
    out, page = tmp_path / "run", tmp_path / "report.html"
    assert main(["run", "--tasks", "processbench_gsm8k,synthetic", "--policy", "synthetic", "--rm", "random",
                 "--strategy", "best_of_n,beam_search", "--budget", "4", "--limit", "4", "--output", str(out)]) == 0
    assert main(["report", str(out), "--output", str(page)]) == 0
    from prmbench.report.data import load_report_data

    data = load_report_data([out])
    assert sorted(c.key for c in data.cells) == ["run/synthetic--random--beam_search--n4", "run/synthetic--random--best_of_n--n4"]
    assert len(data.problems) == 4 and all(p["task"] == "synthetic" for p in data.problems)
    assert [(r["task"], r["rm"], r["n"]) for r in data.step_cells] == [("processbench_gsm8k", "random", 4)]
    metrics = json.loads((out / CELLS_DIR / "processbench_gsm8k--random" / "metrics.json").read_text())
    assert data.step_cells[0]["error_acc"] == metrics["error_acc"]
    text = page.read_text()
    table = text[text.index('id="step-board"'):]
    assert "processbench_gsm8k" in table[:table.index("</table>")]


needs_browser = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (scripts/setup.sh installs it)")


@needs_browser
@pytest.mark.slow
def test_page_renders_in_headless_chromium_sorts_and_expands_a_tree(page, tmp_path):
    pytest.importorskip("websocket")
    from matplotlib.image import imread

    from prmbench.testing.browser import Browser

    with Browser(width=1280, height=900) as b:
        b.open(page)
        assert b.evaluate("document.querySelectorAll('#board tbody tr').length") == 6
        assert b.evaluate("document.querySelectorAll('#problems tbody tr').length") == 15
        assert b.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 300)")
        # sort the leaderboard by accuracy (column 8), ascending then descending
        col = "Array.from(document.querySelectorAll('#board tbody tr')).map(r => parseFloat(r.cells[7].dataset.v))"
        b.evaluate("document.querySelectorAll('#board thead th')[7].click()")
        up = b.evaluate(col)
        assert up == sorted(up)
        b.evaluate("document.querySelectorAll('#board thead th')[7].click()")
        down = b.evaluate(col)
        assert down == sorted(up, reverse=True) and down != up
        # open a problem, then its beam-search cell: the tree is there, root expanded
        b.evaluate("document.querySelector('#problems tbody tr').click()")
        assert b.evaluate("document.querySelectorAll('#drill details').length") == 6
        b.evaluate("(() => { const d = Array.from(document.querySelectorAll('#drill details'))"
                   ".find(d => d.textContent.includes('beam_search--n8')); d.open = true; })()")
        b.evaluate("new Promise(r => setTimeout(r, 200))")
        count = "document.querySelectorAll('#drill details[open] .tree li').length"
        before = b.evaluate(count)
        assert before >= 2
        expandable = ("Array.from(document.querySelectorAll('#drill details[open] .tree li'))"
                      ".find(li => li.querySelector(':scope > .tog').textContent === '\\u25B8')")
        assert b.evaluate(f"!!{expandable}")
        b.evaluate(f"{expandable}.querySelector(':scope > .tog').click()")
        assert b.evaluate(count) > before  # a node's children rendered on expansion
        assert b.evaluate("document.querySelectorAll('#drill details[open] .step').length") >= 1
        b.evaluate("document.querySelector('#drill details[open] .tree').scrollIntoView()")
        shot = b.screenshot(tmp_path / "shot.png")
    img = imread(shot)
    assert img.shape[0] == 900 and img.shape[1] == 1280
    assert img[..., :3].std() > 0.05  # not a blank page
    # the score colours of tree nodes are on screen (the greens/reds of hsl(.., 65%, 82%))
    assert ((img[..., 1] > img[..., 0] + 0.1) | (img[..., 0] > img[..., 1] + 0.1)).mean() > 0.001


def test_rm_size_figure_only_with_several_sizes(run_dir):
    from prmbench.report.data import load_report_data
    from prmbench.report.figures import figures

    data = load_report_data([run_dir])
    assert [f[0] for f in figures(data.board, data.rm_sizes)] == ["compute", "budget", "seconds"]
    board = data.board.copy()
    other = board[board["rm"] == "synthetic_prm"].copy()
    other["rm"], other["accuracy"] = "synthetic_prm_big", other["accuracy"] * 0.5
    import pandas as pd

    both = pd.concat([board, other], ignore_index=True)
    ids = [f[0] for f in figures(both, {"synthetic_prm": 1e9, "synthetic_prm_big": 7e9})]
    assert ids == ["compute", "budget", "seconds", "rm_size"]


@pytest.mark.slow
def test_tiny_model_math500_report_has_every_cell_problem_and_tree(tmp_path, tiny_model_dir, shared_data_dir):
    """The done-when path: a tiny hf policy on MATH-500 with best_of_n, beam_search and mcts, then the report."""
    out, page = tmp_path / "run", tmp_path / "report.html"
    assert main(["run", "--tasks", "math500", "--limit", "3", "--policy", f"hf:{tiny_model_dir}", "--rm", "random",
                 "--strategy", ",".join(STRATEGIES), "--budget", "2", "--max-tokens", "12", "--output", str(out),
                 "--data-file", f"math500={shared_data_dir / 'math500' / 'test.jsonl'}"]) == 0
    assert main(["report", str(out), "--output", str(page)]) == 0
    text = page.read_text()
    blocks = _blocks(text)
    summary = blocks["summary"]
    assert sorted(c["key"].split("--")[2] for c in summary["cells"]) == sorted(STRATEGIES)
    assert len(summary["problems"]) == 3 and all(len(o) == 3 for o in summary["outcomes"])
    assert [c["n_trees"] for c in summary["cells"]] == [0 if "best_of_n" in c["key"] else 3 for c in summary["cells"]]
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= 3
    if find_chromium() is None:
        return
    pytest.importorskip("websocket")
    from prmbench.testing.browser import Browser

    with Browser() as b:
        b.open(page)
        assert b.evaluate("document.querySelectorAll('#board tbody tr').length") == 3
        assert b.evaluate("document.querySelectorAll('#problems tbody tr').length") == 3
        b.evaluate("window.prmbenchReport.openProblem(2)")
        b.evaluate("document.querySelectorAll('#drill details').forEach(d => { d.open = true; })")
        b.evaluate("new Promise(r => setTimeout(r, 200))")
        assert b.evaluate("document.querySelectorAll('#drill details[open] .tree').length") == 2
