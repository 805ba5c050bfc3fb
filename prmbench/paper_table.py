"""The paper's Table 1 layout: rows generator x method, columns tasks (see ../shared/PAPER.md).

Methods, at k = the protocol's N (8 in `paper_protocol`):

- none: the generator alone, the unbiased pass@1 of the oracle cell's pool (prmbench.passk);
- majority vote: the `majority_vote` cell at budget k (maj@k);
- each reward model R: the `best_of_n` cell with R at budget k (prm@k);
- pass@k (oracle): the unbiased pass@k of the oracle best-of-N cell with the largest pool >= k,
  the upper bound (not a reward model's result).

A method whose cell is missing shows "-". Every value is recomputed from the cells' records.
"""

from __future__ import annotations

from typing import Any, Iterable

from tabulate import tabulate

from prmbench.errors import DataError
from prmbench.passk import mean_pass_at_k
from prmbench.results import CellResult, RunResult

ORACLE = "oracle"
NO_RM_BASELINES = ("random",)  # reward models that are no method of the table


def _accuracy(cell: CellResult) -> float | None:
    recs = cell.typed_records()
    return sum(r.correct for r in recs) / len(recs) if recs else None


def paper_rows(runs: Iterable[RunResult], k: int = 8) -> tuple[list[str], list[dict[str, Any]]]:
    """(tasks, rows): one row per (generator, method) with accuracy (0..1 or None) per task."""
    cells = [c for r in runs for c in r.cells if c.records]
    tasks = sorted({c.task for c in cells})
    generators = sorted({c.policy for c in cells})
    rms = sorted({c.rm for c in cells if c.strategy == "best_of_n" and c.rm not in (ORACLE, *NO_RM_BASELINES)})
    rows = []
    for gen in generators:
        mine = [c for c in cells if c.policy == gen]

        def pick(strategy: str, rm: str | None) -> dict[str, float | None]:
            out: dict[str, float | None] = {}
            for t in tasks:
                hit = [c for c in mine if c.task == t and c.strategy == strategy and c.budget == k
                       and (rm is None or c.rm == rm)]
                out[t] = _accuracy(hit[0]) if hit else None
            return out

        def oracle(kk: int) -> dict[str, float | None]:
            out: dict[str, float | None] = {}
            for t in tasks:
                pools = [c for c in mine if c.task == t and c.strategy == "best_of_n" and c.rm == ORACLE
                         and c.budget >= kk]
                out[t] = mean_pass_at_k(max(pools, key=lambda c: c.budget).records, kk)[0] if pools else None
            return out

        rows.append({"generator": gen, "method": "none", **oracle(1)})
        rows.append({"generator": gen, "method": "majority vote", **pick("majority_vote", None)})
        for rm in rms:
            rows.append({"generator": gen, "method": rm, **pick("best_of_n", rm)})
        rows.append({"generator": gen, "method": f"pass@{k} (oracle)", **oracle(k)})
    return tasks, rows


def render_paper_table(runs: Iterable[RunResult], k: int = 8) -> str:
    """Table 1 as a markdown pipe table, accuracy in percent."""
    tasks, rows = paper_rows(list(runs), k)
    if not rows:
        raise DataError("no cell has records: nothing for the paper table")
    body, last = [], None
    for r in rows:
        gen = r["generator"] if r["generator"] != last else ""
        last = r["generator"]
        body.append([gen, r["method"], *("-" if r[t] is None else f"{100 * r[t]:.1f}" for t in tasks)])
    return (f"Accuracy (%) at N = {k}: none = pass@1, majority vote = maj@{k}, reward models = prm@{k} "
            f"(best-of-{k}), pass@{k} = the oracle bound (unbiased, Chen et al. 2021)\n\n"
            + tabulate(body, headers=["generator", "method", *tasks], tablefmt="pipe",
                       colalign=["left", "left", *["right"] * len(tasks)], disable_numparse=True))
