"""Readers for step-labelled solution sets: PRM800K raw, Math-Shepherd, ProcessBench, prmbench.

Every reader yields `LabelledSolution`s with one label per step: 1.0 good, 0.0 bad, a soft value
in [0, 1] (Monte Carlo estimates), or None where the source leaves the step unlabelled. A row that
does not fit its format raises `DataError` naming the file, the line and the field.

`read_labels("FMT:PATH")` is the entry point; FMT is one of `FORMATS`:

- ``prm800k``: raw PRM800K lines (phase 1 and phase 2). One solution per line, following the
  labeller's path through the steps: at each step the chosen completion, else the labeller's own
  (``human_completion``, labelled 1.0: the labeller wrote it as a correct step). Where no
  completion was chosen and none was written (labelling stopped: phase 2 ``found_error``, or a
  phase-1 step whose alternatives were all rejected) the path ends with the first rejected
  completion (rating -1, label 0.0) if there is one. Ratings map 1 -> 1.0, -1 -> 0.0, null ->
  None, and the neutral rating 0 -> `PRM800K_NEUTRAL`: 1.0 by default, because only -1 marks a
  mistake (a neutral step is acceptable but not progress, and labelling continues past it);
  `read_prm800k(path, neutral=0.0)` gives the strict reading (only +1 is good) and
  `neutral=None` leaves neutral steps unlabelled.
- ``math_shepherd``: rows with ``input`` (question, then ``Step k: ...`` steps each ending in the
  step tag `` ки``) and ``label`` (the same text with each tag replaced by `` +`` or `` -``).
  The ``Step k:`` prefixes are removed from the step texts.
- ``processbench``: a JSON array (as published) or JSONL of rows with ``id``, ``problem``,
  ``steps`` and ``label`` (index of the earliest wrong step, -1 for none). Steps before the
  error are 1.0, the error step 0.0, later steps None (their correctness is unknown).
- ``prmbench``: the label files `prmbench label` writes (hard labels; `prmbench_soft` reads the
  Monte Carlo values instead).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from prmbench.errors import DataError
from prmbench.jsonl import read_jsonl_rows

PRM800K_NEUTRAL: float | None = 1.0
MATH_SHEPHERD_TAG = "ки"


@dataclass(frozen=True)
class LabelledSolution:
    """One step-labelled solution of a labelled data set.

    `question` is the problem statement shown to the PRM; `labels` has one entry per step:
    1.0 good, 0.0 bad, a soft value in [0, 1], or None (unlabelled). `source` names the format
    it was read from; `meta` holds source-specific fields (file, line, generator, ...).
    """

    problem_id: str
    question: str
    steps: tuple[str, ...]
    labels: tuple[float | None, ...]
    source: str
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.labels):
            raise ValueError(f"{len(self.steps)} steps but {len(self.labels)} labels")

    @property
    def first_error(self) -> int | None:
        """Index of the first step labelled below 0.5 (a bad step), or None when there is none."""
        for i, v in enumerate(self.labels):
            if v is not None and v < 0.5:
                return i
        return None


class _Where:
    """Names a place in an input file for error messages: `path:line: field 'x'`."""

    def __init__(self, path: Path, line: int):
        self.path = path
        self.line = line

    def error(self, fieldname: str, problem: str, fix: str = "") -> DataError:
        """A DataError naming the file, line and field."""
        msg = f"{self.path}:{self.line}: field {fieldname!r} {problem}"
        return DataError(msg + (f"; {fix}" if fix else ""))

    def get(self, obj: Any, dotted: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        """The value at `dotted` (keys separated by '.'), checked to be of `kind`."""
        cur = obj
        for key in dotted.split("."):
            if not isinstance(cur, Mapping) or key not in cur:
                if optional:
                    return None
                raise self.error(dotted, "is missing")
            cur = cur[key]
        if cur is None and optional:
            return None
        if not isinstance(cur, kind) or (kind is int and isinstance(cur, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(dotted, f"should be {names}, got {type(cur).__name__}")
        return cur

    def str_list(self, obj: Any, dotted: str) -> list[str]:
        """A non-empty list of strings at `dotted`."""
        items = self.get(obj, dotted, list)
        if not items:
            raise self.error(dotted, "is empty")
        for i, s in enumerate(items):
            if not isinstance(s, str):
                raise self.error(f"{dotted}[{i}]", f"should be str, got {type(s).__name__}")
        return items


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- PRM800K

_RATINGS = {1: 1.0, -1: 0.0}


def _rating(value: Any, where: _Where, fieldname: str, neutral: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or value not in (-1, 0, 1):
        raise where.error(fieldname, f"should be -1, 0, 1 or null, got {value!r}")
    return neutral if value == 0 else _RATINGS[value]


def read_prm800k(path: str | Path, *, neutral: float | None = PRM800K_NEUTRAL) -> Iterator[LabelledSolution]:
    """Solutions of a raw PRM800K file (phase 1 or 2), one per line; see the module docstring."""
    path = Path(path)
    for line, row in read_jsonl_rows(path, "PRM800K file"):
        w = _Where(path, line)
        problem = w.get(row, "question.problem", str)
        steps_raw = w.get(row, "label.steps", list)
        finish = w.get(row, "label.finish_reason", str)
        steps: list[str] = []
        labels: list[float | None] = []
        human: list[int] = []
        for i, step in enumerate(steps_raw):
            name = f"label.steps[{i}]"
            if not isinstance(step, Mapping):
                raise w.error(name, f"should be an object, got {type(step).__name__}")
            completions = step.get("completions") or []
            if not isinstance(completions, list):
                raise w.error(f"{name}.completions", f"should be a list or null, got {type(completions).__name__}")
            for j, c in enumerate(completions):
                if not isinstance(c, Mapping) or not isinstance(c.get("text"), str):
                    raise w.error(f"{name}.completions[{j}]", "should be an object with a string 'text'")
            chosen = step.get("chosen_completion")
            hc = step.get("human_completion")
            if chosen is not None:
                if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen < len(completions):
                    raise w.error(f"{name}.chosen_completion", f"{chosen!r} is not an index of its {len(completions)} completions")
                c = completions[chosen]
                steps.append(c["text"])
                labels.append(_rating(c.get("rating"), w, f"{name}.completions[{chosen}].rating", neutral))
                continue
            if hc is not None:
                if not isinstance(hc, Mapping) or not isinstance(hc.get("text"), str):
                    raise w.error(f"{name}.human_completion", "should be null or an object with a string 'text'")
                steps.append(hc["text"])
                labels.append(1.0)
                human.append(len(steps) - 1)
                continue
            # Labelling stopped here: the path ends with the first rejected completion, if any.
            for j, c in enumerate(completions):
                if c.get("rating") == -1:
                    steps.append(c["text"])
                    labels.append(0.0)
                    break
            break
        if not steps:
            continue
        yield LabelledSolution(
            problem_id=_digest(problem),
            question=problem,
            steps=tuple(steps),
            labels=tuple(labels),
            source="prm800k",
            meta={
                "file": str(path), "line": line, "finish_reason": finish,
                "phase": 1 if row.get("generation") is None else 2,
                "generation": row.get("generation"), "labeler": row.get("labeler"),
                "ground_truth_answer": (row.get("question") or {}).get("ground_truth_answer"),
                "human_steps": human,
            },
        )


# ----------------------------------------------------------------------------------- Math-Shepherd

_STEP_PREFIX = re.compile(r"^\s*Step\s*\d+\s*[:.]\s*")
_FIRST_STEP = re.compile(r"Step\s*1\s*:")


def read_math_shepherd(path: str | Path) -> Iterator[LabelledSolution]:
    """Solutions of a Math-Shepherd JSONL file; see the module docstring."""
    path = Path(path)
    for line, row in read_jsonl_rows(path, "Math-Shepherd file"):
        w = _Where(path, line)
        text = w.get(row, "input", str)
        label = w.get(row, "label", str)
        pieces = text.split(MATH_SHEPHERD_TAG)
        if len(pieces) < 2:
            raise w.error("input", f"has no step tag {MATH_SHEPHERD_TAG!r}", "each step must end with ' ки'")
        if pieces[-1].strip():
            raise w.error("input", "has text after its last step tag")
        pieces = pieces[:-1]
        marks: list[float] = []
        pos = 0
        for k, piece in enumerate(pieces):
            if label[pos:pos + len(piece)] != piece or pos + len(piece) >= len(label):
                raise w.error("label", f"does not match 'input' at step {k + 1}",
                              "'label' must be 'input' with each ' ки' replaced by ' +' or ' -'")
            mark = label[pos + len(piece)]
            if mark not in "+-":
                raise w.error("label", f"has {mark!r} where step {k + 1}'s tag should be '+' or '-'")
            marks.append(1.0 if mark == "+" else 0.0)
            pos += len(piece) + 1
        m = _FIRST_STEP.search(pieces[0])
        if m is None:
            raise w.error("input", "has no 'Step 1:' after the question")
        question = pieces[0][:m.start()].strip()
        pieces[0] = pieces[0][m.start():]
        steps = tuple(_STEP_PREFIX.sub("", p).strip() for p in pieces)
        yield LabelledSolution(
            problem_id=_digest(question), question=question, steps=steps, labels=tuple(marks),
            source="math_shepherd", meta={"file": str(path), "line": line, "task": row.get("task")},
        )


# ------------------------------------------------------------------------------------ ProcessBench


def _json_items(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """(line, item) of a JSON array file, or of a JSONL file when it is not an array."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{what} {path} is not UTF-8 text ({e})") from None
    start = len(text) - len(text.lstrip())
    if not text.startswith("[", start):
        yield from read_jsonl_rows(path, what)
        return
    dec = json.JSONDecoder()
    i = start + 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            raise DataError(f"{path}: the JSON array is not closed; the file may be truncated")
        if text[i] == "]":
            return
        line = text.count("\n", 0, i) + 1
        try:
            item, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        yield line, item


def read_processbench(path: str | Path) -> Iterator[LabelledSolution]:
    """Solutions of a ProcessBench file; see the module docstring."""
    path = Path(path)
    for line, row in _json_items(path, "ProcessBench file"):
        w = _Where(path, line)
        if not isinstance(row, Mapping):
            raise w.error("(row)", f"should be an object, got {type(row).__name__}")
        pid = w.get(row, "id", str)
        problem = w.get(row, "problem", str)
        steps = w.str_list(row, "steps")
        err = w.get(row, "label", int)
        if not -1 <= err < len(steps):
            raise w.error("label", f"is {err}, not -1 or a step index below {len(steps)}")
        if err == -1:
            labels: list[float | None] = [1.0] * len(steps)
        else:
            labels = [1.0] * err + [0.0] + [None] * (len(steps) - err - 1)
        yield LabelledSolution(
            problem_id=pid, question=problem, steps=tuple(steps), labels=tuple(labels),
            source="processbench",
            meta={"file": str(path), "line": line, "generator": row.get("generator"),
                  "final_answer_correct": row.get("final_answer_correct"), "label": err},
        )


# ------------------------------------------------------------------------------- prmbench labels


def _label_value(v: Any, w: _Where, name: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
        raise w.error(name, f"should be a number in [0, 1] or null, got {v!r}")
    return float(v)


def _read_prmbench(path: str | Path, soft: bool) -> Iterator[LabelledSolution]:
    path = Path(path)
    key = "mc_values" if soft else "labels"
    for line, row in read_jsonl_rows(path, "label file"):
        w = _Where(path, line)
        pid = w.get(row, "problem_id", str)
        question = w.get(row, "question", str)
        steps = w.str_list(row, "steps")
        values = w.get(row, key, list)
        if len(values) != len(steps):
            raise w.error(key, f"has {len(values)} entries for {len(steps)} steps")
        labels = tuple(_label_value(v, w, f"{key}[{i}]") for i, v in enumerate(values))
        meta = {k: row[k] for k in ("task", "first_error", "annotators", "mc_values", "search") if k in row}
        meta.update(file=str(path), line=line)
        yield LabelledSolution(problem_id=pid, question=question, steps=tuple(steps), labels=labels,
                               source="prmbench", meta=meta)


def read_prmbench(path: str | Path) -> Iterator[LabelledSolution]:
    """Solutions of a `prmbench label` file with its hard labels."""
    return _read_prmbench(path, soft=False)


def read_prmbench_soft(path: str | Path) -> Iterator[LabelledSolution]:
    """Solutions of a `prmbench label` file with the Monte Carlo values as (soft) labels."""
    return _read_prmbench(path, soft=True)


FORMATS: dict[str, Callable[[str | Path], Iterator[LabelledSolution]]] = {
    "prm800k": read_prm800k,
    "math_shepherd": read_math_shepherd,
    "processbench": read_processbench,
    "prmbench": read_prmbench,
    "prmbench_soft": read_prmbench_soft,
}


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split 'FMT:PATH' into the format name and path; a bad spec raises DataError."""
    fmt, sep, path = spec.partition(":")
    if not sep or not path or fmt not in FORMATS:
        raise DataError(f"label source {spec!r} should be FMT:PATH with FMT one of {', '.join(FORMATS)} "
                        "(e.g. processbench:gsm8k.json)")
    return fmt, Path(path)


def read_labels(spec: str) -> Iterator[LabelledSolution]:
    """Labelled solutions of `spec` = 'FMT:PATH' (FMT in `FORMATS`), in file order.

    Bad rows raise DataError naming the file, the line and the field.
    """
    fmt, path = parse_spec(spec)
    return FORMATS[fmt](path)
