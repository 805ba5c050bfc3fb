"""Exact record-by-record comparison of two deterministic runs (`prmbench compare --exact`).

A statistical test cannot see a small regression on a small fixture (McNemar at p < 0.05 on 30
problems lets five flipped problems through), but a deterministic run needs none: same code,
same configuration and same inputs give the same records. So for the CI fixture every record of
the base run must be matched in the new run by one with

- the same verdict (`correct`), and
- the same chosen answer (`answer`: the extracted math answer, or the program of a code task).

Spend, timings and search internals (`spend`, `info`) are not compared: they change with
legitimate work on budgets and machines, and a change that matters shows in a verdict or answer.

Before records are looked at, the runs' whole configuration identity must agree (see
prmbench.comparability.identity_differences): otherwise the baseline is stale, or the run used
other settings, and the comparison is refused with a ConfigError naming what differs.
Cells are paired by prmbench.compare.pair_cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from prmbench.compare import CellKey, format_key, pair_cells, records_by_problem
from prmbench.comparability import check_identity
from prmbench.errors import DataError
from prmbench.results import RunResult
from prmbench.types import Record

#: Kinds of RecordChange.
VERDICT, ANSWER, MISSING, EXTRA = "verdict", "answer", "missing", "extra"
_LABELS = {VERDICT: "FLIPPED", ANSWER: "ANSWER", MISSING: "MISSING", EXTRA: "EXTRA"}


@dataclass(frozen=True)
class RecordChange:
    """One record that differs: its cell (id), problem, what changed and the old and new values.

    `kind` VERDICT: `old`/`new` are the verdicts (bool); ANSWER: the chosen answers (same verdict);
    MISSING: a problem of the base cell the new run has no record for (`old` = its verdict);
    EXTRA: a problem only the new cell has (`new` = its verdict).
    """

    cell: str
    problem_id: str
    kind: str
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        """One line: label, cell, problem and old -> new."""
        if self.kind == VERDICT:
            what = f"{_verdict(self.old)} -> {_verdict(self.new)}"
        elif self.kind == ANSWER:
            what = f"answer {_answer(self.old)} -> {_answer(self.new)}"
        elif self.kind == MISSING:
            what = f"no record in the new run (base: {_verdict(self.old)})"
        else:
            what = f"not in the base run (new: {_verdict(self.new)})"
        return f"{_LABELS[self.kind]:<8} {self.cell}  {self.problem_id}  {what}"


def _verdict(correct: Any) -> str:
    return "correct" if correct else "wrong"


def _answer(answer: Any) -> str:
    text = repr(answer)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class ExactComparison:
    """The result of `compare_exact`: every differing record, and what was compared.

    `n_cells` / `n_records`: cells paired and base records looked at. `only_in_base` /
    `only_in_new`: keys of unpaired cells (with equal configurations only a damaged run has any).
    """

    base: str
    new: str
    n_cells: int
    n_records: int
    changes: tuple[RecordChange, ...]
    only_in_base: tuple[CellKey, ...] = ()
    only_in_new: tuple[CellKey, ...] = ()

    @property
    def identical(self) -> bool:
        """True when no record and no cell differs."""
        return not (self.changes or self.only_in_base or self.only_in_new)

    @property
    def flipped(self) -> list[RecordChange]:
        """The records whose verdict changed."""
        return [c for c in self.changes if c.kind == VERDICT]


def record_changes(cell: str, base: Mapping[str, Record], new: Mapping[str, Record]) -> list[RecordChange]:
    """The differences between two cells' records (by problem id), in problem-id order."""
    out = []
    for pid in sorted(set(base) | set(new)):
        if pid not in new:
            out.append(RecordChange(cell, pid, MISSING, old=base[pid].correct))
        elif pid not in base:
            out.append(RecordChange(cell, pid, EXTRA, new=new[pid].correct))
        else:
            a, b = base[pid], new[pid]
            if a.correct != b.correct:
                out.append(RecordChange(cell, pid, VERDICT, old=a.correct, new=b.correct))
            elif a.answer != b.answer:
                out.append(RecordChange(cell, pid, ANSWER, old=a.answer, new=b.answer))
    return out


def compare_exact(base: RunResult, new: RunResult) -> ExactComparison:
    """Compare two deterministic runs record by record (see the module docstring).

    Both runs must be loaded with their records. ConfigError when their configuration identity
    differs (or they share no cell); DataError when the base run has no record to compare.
    """
    check_identity(base, new)
    pairing = pair_cells(base, new)
    changes: list[RecordChange] = []
    n_records = 0
    for bc, nc in pairing.matched:
        old = records_by_problem(base, bc)
        n_records += len(old)
        changes += record_changes(bc.id, old, records_by_problem(new, nc))
    if n_records == 0:
        raise DataError(f"{base.path} has no records in the cells it shares with {new.path} (or no records were "
                        "loaded: use load_run(path, with_records=True)); nothing can be compared")
    return ExactComparison(base=str(base.path), new=str(new.path), n_cells=len(pairing.matched), n_records=n_records,
                           changes=tuple(changes), only_in_base=tuple(pairing.only_in_base),
                           only_in_new=tuple(pairing.only_in_new))


def render_exact(cmp: ExactComparison) -> str:
    """A readable report: one line per differing record or cell, then the verdict."""
    lines = [f"base: {cmp.base}", f"new:  {cmp.new}", ""]
    lines += [c.describe() for c in cmp.changes]
    lines += [f"CELL     {format_key(k)}  only in the base run" for k in cmp.only_in_base]
    lines += [f"CELL     {format_key(k)}  only in the new run" for k in cmp.only_in_new]
    if cmp.identical:
        lines.append(f"identical: {cmp.n_records} records in {cmp.n_cells} cell(s) have the same verdicts and "
                     "chosen answers.")
        return "\n".join(lines)
    counts = {kind: sum(c.kind == kind for c in cmp.changes) for kind in _LABELS}
    parts = [f"{counts[VERDICT]} flipped verdict(s)", f"{counts[ANSWER]} changed answer(s)",
             f"{counts[MISSING]} missing and {counts[EXTRA]} extra record(s)"]
    if cmp.only_in_base or cmp.only_in_new:
        parts.append(f"{len(cmp.only_in_base) + len(cmp.only_in_new)} unpaired cell(s)")
    n_cells = len({c.cell for c in cmp.changes})
    lines += ["", f"DIFFERS: {', '.join(parts)} in {n_cells} of {cmp.n_cells} cell(s) "
                  f"({cmp.n_records} base records compared)."]
    return "\n".join(lines)
