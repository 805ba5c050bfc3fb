"""PRM800K test (Lightman et al., 2023): do step scores agree with human step ratings?

PRM800K's labellers rated solution steps -1 (wrong or misleading), 0 (neutral: correct but no
progress) or +1 (correct and useful). Each item is one rated step in the context of its solution;
the reward model scores the solution and the record keeps the score of the rated step. Metrics
(prmbench.step_eval.rating_metrics): `auroc` of detecting the steps rated -1 against all others
(0 counts with +1: a neutral step is not an error), `auroc_neg_vs_pos` (-1 vs +1 only),
`accuracy` of "score below the threshold" as a detector of -1 at `threshold` (default 0.5), and
the mean score per rating.

Data (task argument `source`):

- `rating600`: the shared 600 real phase-2 test steps (200 per rating), each with its full
  pre-generated solution as context and the 0-based `target_index` of the rated step
  (``$PRMBENCH_DATA_DIR/prmbench_prm800k/rating600/``; see that folder's README).
- `raw`: the raw PRM800K file (`phase2_test.jsonl`, or `phase1_test.jsonl` with `phase=1`), from
  `data_file` or downloaded from the openai/prm800k Git LFS storage and checked against the
  official sha256. Conventions: each line is one labelled solution; walking its `label.steps` in
  order, every completion with a rating (-1/0/+1; null ratings and human-written completions are
  not rated) becomes an item whose context is the path so far (the chosen completions, or the
  human completion where the labeller wrote one); the path continues with the chosen completion
  and ends where labelling stopped (`chosen_completion` null and no human completion, e.g. after
  the first -1 in phase 2). Quality-control and screening rows are kept as they are in the file.
- `auto` (default): `data_file` (either format, detected by its rows), else the shared
  rating600 file when PRMBENCH_DATA_DIR has it, else the raw download (not attempted offline).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

from prmbench.errors import ConfigError, DataError
from prmbench.step_eval import DEFAULT_THRESHOLD, check_threshold, rating_metrics
from prmbench.step_task import StepItem, StepTask
from prmbench.tasks.step_data import Rows, field, offline, read_rows, shared_path, string_list
from prmbench.types import RMOutput

RATING600 = "prmbench_prm800k/rating600/prm800k_phase2_test_600_rated_steps.jsonl.gz"
SOURCES = ("auto", "rating600", "raw")
#: The official files (openai/prm800k @ 00811d6d, Git LFS): phase -> (url, bytes, sha256).
RAW_FILES = {
    2: ("https://media.githubusercontent.com/media/openai/prm800k/main/prm800k/data/phase2_test.jsonl",
        12240719, "6b172efa884ac8341a946dd82e06947c135b7254109fb3f7aa907c715d98aaad"),
    1: ("https://media.githubusercontent.com/media/openai/prm800k/main/prm800k/data/phase1_test.jsonl",
        829105, "f4b3bc5b095e45c816453dc4d748b755c680d61d55f9895d929a335b487c727d"),
}
RATINGS = (-1, 0, 1)

FIX = ("Fix: set PRMBENCH_DATA_DIR to the shared data folder (prmbench_prm800k/rating600/), or pass the raw PRM800K "
       "file with `--data-file prm800k_test=phase2_test.jsonl`.")


def cache_dir() -> Path:
    """Where downloaded raw files are kept ($PRMBENCH_CACHE_DIR, else ~/.cache/prmbench)."""
    return Path(os.environ.get("PRMBENCH_CACHE_DIR") or Path.home() / ".cache" / "prmbench")


def download_raw(phase: int, url: str | None = None, dest_dir: Path | None = None) -> Path:
    """The raw phase-`phase` test file, downloaded once and checked against the official sha256."""
    default_url, size, sha = RAW_FILES[phase]
    dest = (dest_dir or cache_dir()) / "prm800k" / f"phase{phase}_test.jsonl"
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
        return dest
    why = offline()
    if why:
        raise DataError(f"prm800k_test: the raw phase{phase}_test.jsonl is not cached and the network is off ({why}). {FIX}")
    try:
        with urllib.request.urlopen(url or default_url, timeout=60) as resp:
            data = resp.read()
    except OSError as e:
        raise DataError(f"prm800k_test: cannot download {url or default_url}: {e}. {FIX}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        raise DataError(f"prm800k_test: the downloaded phase{phase}_test.jsonl has sha256 {digest} ({len(data)} bytes), "
                        f"not the official {sha} ({size} bytes); it was not used. {FIX}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def rating600_item(where: str, row: Any) -> StepItem:
    """One rating600 row (a rated step with its full solution) as an item."""
    sid = field(where, row, "step_id", str, "the rated step's id")
    where = f"{where} (step_id {sid!r})"
    question = field(where, row, "problem", str, "the problem text")
    steps = string_list(where, row, "steps")
    target = field(where, row, "target_index", int, "the 0-based index of the rated step in `steps`")
    if not 0 <= target < len(steps):
        raise DataError(f"{where}: field `target_index` must be a step index below {len(steps)}, got {target}")
    rating = field(where, row, "human_rating", int, "the human rating -1, 0 or 1")
    if rating not in RATINGS:
        raise DataError(f"{where}: field `human_rating` must be -1, 0 or 1, got {rating}")
    return StepItem(id=sid, question=question, steps=tuple(steps), subset="rating600",
                    gold={"rating": rating, "target_index": target, "source_line": row.get("source_line_1based")})


def raw_items(where: str, row: Any, line: int) -> list[StepItem]:
    """The rated completions of one raw PRM800K line, each in the context of the chosen path (see module docstring)."""
    question = field(where, field(where, row, "question", dict, "an object with the problem"), "problem", str,
                     "the problem text")
    label = field(where, row, "label", dict, "an object with `steps`")
    steps = field(where, label, "steps", list, "the list of labelled steps")
    items: list[StepItem] = []
    path: list[str] = []
    for i, step in enumerate(steps):
        at = f"{where}: label.steps[{i}]"
        if not isinstance(step, dict):
            raise DataError(f"{at} must be an object with `completions`")
        completions = step.get("completions") or []
        if not isinstance(completions, list):
            raise DataError(f"{at}: field `completions` must be a list or null")
        for j, c in enumerate(completions):
            if not isinstance(c, dict) or not isinstance(c.get("text"), str):
                raise DataError(f"{at}.completions[{j}] must be an object with a string `text`")
            rating = c.get("rating")
            if rating is None:
                continue
            if isinstance(rating, bool) or rating not in RATINGS:
                raise DataError(f"{at}.completions[{j}]: field `rating` must be -1, 0, 1 or null, got {rating!r}")
            items.append(StepItem(id=f"line{line}:step{i}:c{j}", question=question, steps=(*path, c["text"]),
                                  subset="raw", gold={"rating": int(rating), "target_index": len(path),
                                                      "source_line": line}))
        chosen, human = step.get("chosen_completion"), step.get("human_completion")
        if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(completions):
            path.append(completions[chosen]["text"])
        elif isinstance(human, dict) and isinstance(human.get("text"), str):
            path.append(human["text"])
        else:
            break
    return items


class PRM800KTestTask(StepTask):
    """PRM800K test step ratings (see the module docstring)."""

    domain = "math"
    version = "1"
    headline_metrics = ("auroc", "accuracy")

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, source: str = "auto", phase: int = 2,
                 data_file: str | None = None):
        self.threshold = check_threshold(threshold, "prm800k_test")
        if source not in SOURCES:
            raise ConfigError(f"prm800k_test: source must be one of {', '.join(SOURCES)} (got {source!r})")
        if phase not in (1, 2) or isinstance(phase, bool):
            raise ConfigError(f"prm800k_test: phase must be 1 or 2 (got {phase!r})")
        self.source, self.phase = source, int(phase)
        self.data_file = None if data_file in (None, "") else str(data_file)

    def config(self) -> dict[str, Any]:
        """Threshold, source and phase."""
        return {"threshold": self.threshold, "source": self.source, "phase": self.phase}

    def _path(self) -> Path:
        if self.data_file is not None:
            p = Path(self.data_file).expanduser()
            if not p.is_file():
                raise DataError(f"prm800k_test: data file {p} does not exist. {FIX}")
            return p
        if self.source in ("auto", "rating600"):
            local = shared_path(RATING600)
            if local is not None:
                return local
            if self.source == "rating600":
                raise DataError(f"prm800k_test: the shared rating600 file was not found. {FIX}")
        return download_raw(self.phase)

    def read_items(self) -> list[StepItem]:
        """Items of the data file, whose format (rating600 or raw PRM800K) is read from its rows."""
        path = self._path()
        rows: Rows = read_rows(path)
        if not rows:
            raise DataError(f"prm800k_test: {path} holds no rows. {FIX}")
        items: list[StepItem] = []
        for line, (where, row) in enumerate(rows, start=1):
            if isinstance(row, dict) and "label" in row and "human_rating" not in row:
                items.extend(raw_items(where, row, line))
            elif isinstance(row, dict) and "human_rating" in row:
                items.append(rating600_item(where, row))
            else:
                raise DataError(f"{where}: neither a raw PRM800K row (`question`, `label.steps`) nor a rated-step row "
                                f"(`problem`, `steps`, `target_index`, `human_rating`)")
        if not items:
            raise DataError(f"prm800k_test: {path} has no rated step. {FIX}")
        return items

    def record(self, item: StepItem, output: RMOutput) -> dict[str, Any]:
        """rating, target_index and score (None when the rated step was cut off: truncated)."""
        t = int(item.gold["target_index"])
        return {"rating": int(item.gold["rating"]), "target_index": t,
                "score": float(output.step_scores[t]) if t < len(output.step_scores) else None,
                "source_line": item.gold.get("source_line")}

    def evaluate(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """`rating_metrics` at the task's threshold."""
        return [dict(r) for r in records], rating_metrics(records, self.threshold)
