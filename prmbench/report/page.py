"""The HTML of a report: one self-contained file (inline CSS, JS, PNG figures; no external resource)."""

from __future__ import annotations

import html
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from prmbench.errors import ConfigError
from prmbench.leaderboard import format_accuracy_ci
from prmbench.report.data import ReportData, load_report_data
from prmbench.report.figures import figures

_BOARD = (("run", "run", None), ("task", "task", None), ("policy", "policy", None), ("rm", "rm", None),
          ("strategy", "strategy", None), ("budget", "budget", "d"), ("n", "n", "d"),
          ("accuracy", "accuracy % [95% CI]", "acc"), ("mean_flops", "FLOPs", ".3g"),
          ("budget_flops", "allowance FLOPs", ".3g"), ("mean_generated_tokens", "gen tokens", ",.1f"),
          ("mean_rm_tokens", "RM tokens", ",.1f"), ("mean_seconds", "seconds", ".3f"))


def _json_block(obj: Any) -> str:
    """JSON safe inside a <script> element (no `</` can end it)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).replace("</", "<\\/")


def _asset(name: str) -> str:
    return resources.files("prmbench.report").joinpath("assets", name).read_text()


def _cell(value: Any, kind: str | None, row: dict[str, Any]) -> str:
    if kind == "acc":
        sort = "" if value is None else f' data-v="{value}"'
        return f'<td class="num"{sort}>{html.escape(format_accuracy_ci(value, row.get("ci_low"), row.get("ci_high")))}</td>'
    if kind is None:
        return f"<td>{html.escape('' if value is None else str(value))}</td>"
    if value is None:
        return '<td class="num" data-v="-1e300">-</td>'
    return f'<td class="num" data-v="{value}">{format(value, kind)}</td>'


def _board_html(data: ReportData) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in _BOARD) + "<th>trees</th><th>complete</th>"
    rows = []
    for c in data.cells:
        tds = "".join(_cell(c.row.get(k), kind, c.row) for k, _, kind in _BOARD)
        rows.append(f'<tr data-cell="{html.escape(c.key)}">{tds}<td class="num" data-v="{c.n_trees}">{c.n_trees}</td>'
                    f"<td>{'yes' if c.row.get('complete') else 'no'}</td></tr>")
    return (f'<table class="sortable" id="board"><thead><tr>{head}</tr></thead><tbody>\n'
            + "\n".join(rows) + "</tbody></table>")


def _step_html(data: ReportData) -> str:
    if not data.step_cells:
        return '<p class="meta">No step-level cells in these runs.</p>'
    cols: list[str] = []
    for r in data.step_cells:
        cols.extend(k for k in r if k not in cols)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in data.step_cells:
        tds = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                tds.append(f'<td class="num" data-v="{v}">{v:.4g}</td>')
            else:
                tds.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table class="sortable" id="step-board"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


CHUNK = 25
"""Problems per detail block: opening a problem parses one block per cell, of this many problems."""


def _detail_blocks(data: ReportData) -> list[str]:
    """One JSON block per (cell, chunk of CHUNK problems in page order): `cell-I-J`."""
    out = []
    for i, c in enumerate(data.cells):
        for j in range(0, len(data.problems), CHUNK):
            part = {p["key"]: c.details[p["key"]] for p in data.problems[j:j + CHUNK] if p["key"] in c.details}
            if part:
                out.append(f'<script type="application/json" id="cell-{i}-{j // CHUNK}">{_json_block(part)}</script>')
    return out


def render_report(data: ReportData, title: str = "prmbench report") -> str:
    """The whole page as a string."""
    summary = {"cells": [{"key": c.key, "n_trees": c.n_trees} for c in data.cells], "problems": data.problems,
               "outcomes": [c.outcomes for c in data.cells], "chunk": CHUNK}
    runs = "; ".join(f"{html.escape(r.path.name)} ({html.escape(str(r.run.get('status')))}, "
                     f"{html.escape(str(r.run.get('created', ''))[:19])}, unit {html.escape(str(r.run.get('budget_unit')))})"
                     for r in data.runs)
    figs = "".join(f'<figure id="fig-{fid}"><figcaption>{html.escape(t)}</figcaption><img alt="{html.escape(t)}" src="{uri}"></figure>'
                   for fid, t, uri in figures(data.board, data.rm_sizes)) or '<p class="meta">No cell has results to plot.</p>'
    blocks = "\n".join(_detail_blocks(data))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_asset("report.css")}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<div class="meta">runs: {runs}. {len(data.cells)} search cells, {len(data.problems)} problems.
Every number here is computed from the runs' records.</div>
<h2>Leaderboard: search cells</h2>
<p class="meta">Click a column header to sort.</p>
{_board_html(data)}
<h2>Leaderboard: step-level cells</h2>
{_step_html(data)}
<h2>Figures</h2>
<div class="figs">{figs}</div>
<h2>Problems</h2>
<p class="meta">Click a problem for its drill-down: each cell's chosen solution (steps coloured by score:
<span class="legend"><span style="background:hsl(0,65%,82%)">0</span><span style="background:hsl(60,65%,82%)">0.5</span><span style="background:hsl(120,65%,82%)">1</span></span>),
candidates, grade, spend and search tree. Dots: one per cell, green correct.</p>
<input id="filter" placeholder="filter problems (task/id)" size="40">
<div id="pager" class="pager"></div>
<table id="problems"><thead><tr><th>task</th><th>problem</th><th>correct</th><th>cells</th></tr></thead><tbody></tbody></table>
<div id="drill"></div>
<script type="application/json" id="summary">{_json_block(summary)}</script>
{blocks}
<script>{_asset("report.js")}</script>
</body></html>
"""


def write_report(runs: Sequence[str | Path], output: str | Path, title: str | None = None) -> Path:
    """Read `runs` and write the report page to `output`; returns the path written."""
    data = load_report_data(runs)
    text = render_report(data, title or f"prmbench report: {', '.join(Path(r).name for r in runs)}")
    out = Path(output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the report to {out}: {e.strerror or e}; choose a writable --output FILE.html") from e
    print(f"report: {out} ({len(data.cells)} cells, {len(data.problems)} problems, {out.stat().st_size / 1e6:.1f} MB)",
          file=sys.stderr)
    return out
