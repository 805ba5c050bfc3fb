"""Leaderboard tables over synthetic run directories, their renderings and the accuracy-vs-compute plot."""

from __future__ import annotations

import csv
import io
import json
import struct

import pandas as pd
import pytest
from run_fixtures import FakeCell, outcomes, write_run

from prmbench.errors import ConfigError, DataError
from prmbench.leaderboard import COLUMNS, EXTRA_COLUMNS, leaderboard_table, render
from prmbench.metrics import cell_metrics
from prmbench.plot import compute_axis, plot_accuracy_vs_compute
from prmbench.results import load_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _cells(n: int = 20, flops: bool = True) -> list[FakeCell]:
    return [
        FakeCell("math500", "oracle", "best_of_n", 1, outcomes(n, 8), flops=flops),
        FakeCell("math500", "oracle", "best_of_n", 4, outcomes(n, 16), flops=flops),
        FakeCell("math500", "random", "best_of_n", 1, outcomes(n, 8), flops=flops),
        FakeCell("math500", "random", "best_of_n", 4, outcomes(n, 9), flops=flops),
        FakeCell("math500", "none", "majority_vote", 1, outcomes(n, 8), flops=flops),
        FakeCell("math500", "none", "majority_vote", 4, outcomes(n, 11), flops=flops),
        FakeCell("gsm8k", "oracle", "best_of_n", 4, outcomes(n, 19), flops=flops),
        FakeCell("gsm8k", "random", "best_of_n", 4, outcomes(n, 15), flops=flops),
    ]


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run-a", _cells())


def test_table_columns_order_and_sorting(run_dir):
    df = leaderboard_table([load_run(run_dir)])
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert list(df.columns) == [*COLUMNS, *EXTRA_COLUMNS]
    assert len(df) == 8
    assert (df["run"] == "run-a").all()
    keys = list(zip(df["task"], df["budget"], df["accuracy"]))
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], -k[2]))
    assert list(df["task"][:2]) == ["gsm8k", "gsm8k"]
    top4 = df[(df["task"] == "math500") & (df["budget"] == 4)]
    assert list(top4["rm"]) == ["oracle", "none", "random"]
    assert df["complete"].all()


def test_values_come_from_metrics_json(run_dir):
    df = leaderboard_table([load_run(run_dir)])
    row = df[(df["task"] == "math500") & (df["rm"] == "oracle") & (df["budget"] == 4)].iloc[0]
    metrics = json.loads((run_dir / "cells" / row["cell_id"] / "metrics.json").read_text())
    for col in ("n", "accuracy", "stderr", "ci_low", "ci_high", "mean_generated_tokens", "mean_flops",
                "mean_rm_tokens", "mean_seconds", "n_correct"):
        assert row[col] == pytest.approx(metrics[col]), col
    assert row["accuracy"] == pytest.approx(0.8)
    assert row["mean_generated_tokens"] == pytest.approx(400)
    assert row["policy"] == "replay:pool.jsonl"


def test_metrics_json_wins_when_present(run_dir):
    cid = "math500--oracle--best_of_n--n1"
    path = run_dir / "cells" / cid / "metrics.json"
    m = json.loads(path.read_text())
    m["accuracy"] = 0.123  # metrics.json is the source when it matches the records
    path.write_text(json.dumps(m))
    df = leaderboard_table([load_run(run_dir)])
    assert df.set_index("cell_id").loc[cid, "accuracy"] == pytest.approx(0.123)


def test_csv_is_machine_readable(run_dir):
    df = leaderboard_table([load_run(run_dir)])
    text = render(df, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert len(rows) == 8
    back = pd.read_csv(io.StringIO(text))
    assert back["accuracy"].tolist() == pytest.approx(df["accuracy"].tolist())
    assert back["mean_flops"].tolist() == pytest.approx(df["mean_flops"].tolist())
    assert float(rows[0]["accuracy"]) <= 1.0  # fractions, not percent strings


def test_markdown_and_html(run_dir):
    df = leaderboard_table([load_run(run_dir)])
    md = render(df, "markdown")
    lines = md.splitlines()
    assert lines[0].startswith("|") and set(lines[1]) <= set("|:- ")
    assert len(lines) == 2 + 8
    assert "80.0 [58.4, 91.9]" in md  # 16/20 with its Wilson interval, in percent
    assert "accuracy % [95% CI]" in lines[0]
    html = render(df, "html")
    assert html.startswith("<table") and html.rstrip().endswith("</table>")
    assert html.count("<tr>") == 1 + 8 and "80.0 [58.4, 91.9]" in html
    assert render(df, "MD") == md


def test_html_escapes(tmp_path):
    run = write_run(tmp_path / "r", [FakeCell("t", "<rm>", "best_of_n", 1, [True, False])])
    html = render(leaderboard_table([load_run(run)]), "html")
    assert "&lt;rm&gt;" in html and "<rm>" not in html


def test_unknown_format_did_you_mean(run_dir):
    df = leaderboard_table([load_run(run_dir)])
    with pytest.raises(ConfigError, match="Did you mean 'markdown'") as e:
        render(df, "markdwon")
    assert "csv" in str(e.value)


def test_fallback_to_records_when_metrics_missing(tmp_path):
    cells = _cells()
    cells[0].write_metrics = False
    # an interrupted cell: 5 of 20 problems finished, no metrics.json yet
    cells.append(FakeCell("math500", "oracle", "best_of_n", 16, [True, True, False, True, True], write_metrics=False))
    run = write_run(tmp_path / "run", cells)
    df = leaderboard_table([load_run(run)]).set_index("cell_id")
    assert not (run / "cells" / cells[0].id / "metrics.json").exists()
    row = df.loc[cells[0].id]
    expected = cell_metrics(load_run(run).cells[0].records)
    assert row["accuracy"] == pytest.approx(0.4) and row["n"] == 20
    assert row["ci_low"] == pytest.approx(expected["ci_low"])
    assert row["mean_flops"] == pytest.approx(expected["mean_flops"])
    assert bool(row["complete"])  # every problem has a record
    partial = df.loc[cells[-1].id]
    assert partial["n"] == 5 and partial["accuracy"] == pytest.approx(0.8)
    assert not bool(partial["complete"])
    assert "| no" in render(df.reset_index(), "markdown")


def test_stale_metrics_are_recomputed_from_records(tmp_path):
    cell = FakeCell("t", "oracle", "best_of_n", 1, outcomes(10, 5))
    run = write_run(tmp_path / "r", [cell])
    with open(run / "cells" / cell.id / "samples.jsonl", "a") as f:  # resumed: more records than metrics.json knows
        rec = json.loads((run / "cells" / cell.id / "samples.jsonl").read_text().splitlines()[0])
        f.write(json.dumps({**rec, "problem_id": "extra"}) + "\n")
    df = leaderboard_table([load_run(run)])
    assert df.loc[0, "n"] == 11 and df.loc[0, "accuracy"] == pytest.approx(6 / 11)


def test_cell_without_any_result(tmp_path):
    cells = [FakeCell("t", "oracle", "best_of_n", 1, outcomes(4, 2)),
             FakeCell("t", "oracle", "best_of_n", 4, [], write_metrics=False)]
    run = write_run(tmp_path / "r", cells, n_problems={"t": 4})
    df = leaderboard_table([load_run(run)])
    assert len(df) == 2
    empty = df[df["budget"] == 4].iloc[0]
    assert empty["n"] == 0 and pd.isna(empty["accuracy"]) and not empty["complete"]
    for fmt in ("markdown", "csv", "html"):
        render(df, fmt)


def test_multiple_runs_and_records_not_loaded(tmp_path):
    a = write_run(tmp_path / "a" / "run", _cells())
    b = write_run(tmp_path / "b" / "run", _cells()[:2])
    df = leaderboard_table([load_run(a, with_records=False), load_run(b)])
    assert len(df) == 10
    assert df["run"].nunique() == 2  # same directory names get their full paths
    assert df["accuracy"].notna().all()
    empty = leaderboard_table([])
    assert list(empty.columns) == [*COLUMNS, *EXTRA_COLUMNS] and render(empty, "csv").strip() == ",".join(empty.columns)


# -- plot -------------------------------------------------------------------------------------
def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_png(run_dir, tmp_path):
    df = leaderboard_table([load_run(run_dir)])
    out = plot_accuracy_vs_compute(df, tmp_path / "plots" / "acc.png")
    width, height = _png_size(out)
    assert width > 300 and height > 200
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[0] == height and img.shape[1] == width
    assert img[..., :3].std() > 0.01  # something was drawn, not a blank canvas


def test_plot_axis_falls_back_to_tokens(tmp_path):
    run = write_run(tmp_path / "r", _cells(flops=False))
    df = leaderboard_table([load_run(run)])
    assert (df["mean_flops"] == 0).all()
    col, label = compute_axis(df)
    assert col == "mean_generated_tokens" and "tokens" in label
    assert compute_axis(leaderboard_table([load_run(write_run(tmp_path / "f", _cells()))]))[0] == "mean_flops"
    _png_size(plot_accuracy_vs_compute(df, tmp_path / "tokens.png"))


def test_plot_errors(run_dir, tmp_path):
    df = leaderboard_table([load_run(run_dir)])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write the plot"):
        plot_accuracy_vs_compute(df, blocker / "acc.png")
    with pytest.raises(ConfigError, match="cannot write the plot"):
        plot_accuracy_vs_compute(df, tmp_path)  # a directory
    with pytest.raises(DataError):
        plot_accuracy_vs_compute(df.iloc[0:0], tmp_path / "empty.png")
