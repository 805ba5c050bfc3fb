"""The run directory: a versioned, documented results schema and its reader/writer helpers.

Layout of a run directory (schema version 1; see README "Results schema"):

    RUN_DIR/
      run.json                      resolved config, budget unit and its definition, versions,
                                    git revision, hardware, seed, loaded plugins, task versions
                                    + data fingerprints, cells
      cells/<cell_id>/samples.jsonl one Record per problem (prmbench.types.Record.to_json), with
                                    its budget_unit, allowance_flops and measured spend
      cells/<cell_id>/trees.jsonl   step-level strategies: one search tree per problem (nodes with
                                    parent, step text, score, MCTS visits, finished/truncated,
                                    chosen/pruned; prmbench.strategies.tree); optional, the last
                                    row of a problem wins
      cells/<cell_id>/metrics.json  accuracy with stderr and 95% CI, mean spend (see metrics.py)
                                    (step-level cells TASK--RM: the task's step metrics, see
                                    prmbench.step_runner; each cell's `kind` is "search" or "step")
      cache.sqlite                  generations and RM scores (content-addressed; for --resume)

Fields added within version 1 (budget_unit, allowance_flops, budget_flops, mean_spend_flops) are
optional for readers: runs written before them read as unit "n" without an allowance.

Every JSON file is written atomically (temporary file + rename); samples files are appended one
flushed line per finished problem, so an interrupted run keeps every finished problem.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping

from prmbench.errors import DataError
from prmbench.types import Record

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
CELLS_DIR = "cells"
SAMPLES_FILE = "samples.jsonl"
METRICS_FILE = "metrics.json"
TREES_FILE = "trees.jsonl"
CACHE_FILE = "cache.sqlite"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (an interrupted write) is skipped, other bad lines raise."""
    with open(path) as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) and not line.endswith("\n"):
                return  # the run was interrupted mid-write; that problem is recomputed on --resume
            raise DataError(f"{path}:{i}: not valid JSON ({e.msg}); the samples file is damaged") from e


@dataclass(frozen=True)
class CellInfo:
    """One cell as run.json lists it."""

    id: str
    task: str
    rm: str
    strategy: str = ""
    budget: int = 0
    policy: str = ""
    budget_unit: str = "n"
    kind: str = "search"
    """"search" or "step" (a step-level cell TASK--RM: no strategy, budget or policy)."""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CellInfo":
        """A run.json `cells` entry (budget_unit optional: runs before it are unit n)."""
        return cls(id=str(d["id"]), task=str(d["task"]), rm=str(d["rm"]), strategy=str(d.get("strategy") or ""),
                   budget=int(d.get("budget") or 0), policy=str(d.get("policy") or ""),
                   budget_unit=str(d.get("budget_unit") or "n"), kind=str(d.get("kind") or "search"))


@dataclass(frozen=True)
class RunInfo:
    """run.json, typed: what the runner writes (see the module docstring and README "Results
    schema"). Mappings hold the nested sections as written; entries a reader does not know are
    kept in `extra` (other tools and later versions within schema 1 may add some). Only
    `schema_version` and each cell's identity are required (synthetic and older run folders
    carry less)."""

    schema_version: int
    prmbench_version: str = ""
    status: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    seed: int = 0
    budget_unit: str = "n"
    budget_definition: str = ""
    created: str | None = None
    finished: str | None = None
    concurrency: int | None = None
    executor: Mapping[str, Any] = field(default_factory=dict)  # {"executor": "local"} or ray's workers and cluster
    versions: Mapping[str, Any] = field(default_factory=dict)
    git: Mapping[str, Any] = field(default_factory=dict)
    hardware: Mapping[str, Any] = field(default_factory=dict)
    plugins: list[Any] = field(default_factory=list)
    components: Mapping[str, Any] = field(default_factory=dict)
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cells: list[CellInfo] = field(default_factory=list)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RunInfo":
        """Parse run.json's content (a DataError names a missing or malformed entry)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        try:
            kw: dict[str, Any] = {k: d[k] for k in names if k in d and k != "cells"}
            kw["cells"] = [CellInfo.from_json(c) for c in d.get("cells") or []]
            info = cls(**kw, extra={k: v for k, v in d.items() if k not in names})
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"run.json is malformed ({type(e).__name__}: {e}); re-run it with this prmbench") from e
        return info


@dataclass(frozen=True)
class CellResult:
    """One cell of a run as read back: its identity, metrics and records."""

    id: str
    task: str
    rm: str
    strategy: str
    budget: int
    policy: str
    metrics: dict[str, Any]
    records: list[dict[str, Any]]
    budget_unit: str = "n"
    kind: str = "search"
    """"search" (task x rm x strategy x budget) or "step" (a step-level cell TASK--RM: strategy and
    policy "", budget 0; see prmbench.step_runner)."""

    def typed_records(self) -> list[Record]:
        """The records as `Record`s (`Record.from_json`)."""
        return [Record.from_json(r) for r in self.records]


@dataclass(frozen=True)
class RunResult:
    """A whole run directory as read back: `run` is run.json as written, `info` the same typed."""

    path: Path
    run: dict[str, Any]
    cells: list[CellResult]

    @cached_property
    def info(self) -> RunInfo:
        """run.json as a `RunInfo` (parsed once)."""
        return RunInfo.from_json(self.run)


def load_run(path: str | Path, with_records: bool = True) -> RunResult:
    """Read a run directory, checking its schema version; a clear DataError when it is not one."""
    path = Path(path)
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise DataError(f"{path} is not a prmbench run directory (no {RUN_FILE}); pass the --output folder of `prmbench run`")
    try:
        run = json.loads(run_file.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{run_file} is not valid JSON: {e}") from e
    version = run.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DataError(f"{run_file} has results schema version {version!r}; this prmbench reads version "
                        f"{SCHEMA_VERSION}. Re-run it with this version or use the matching prmbench release.")
    cells = []
    for c in RunInfo.from_json(run).cells:
        cell_dir = path / CELLS_DIR / c.id
        metrics_path = cell_dir / METRICS_FILE
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        samples = cell_dir / SAMPLES_FILE
        records = list(read_jsonl(samples)) if with_records and samples.is_file() else []
        cells.append(CellResult(id=c.id, task=c.task, rm=c.rm, strategy=c.strategy, budget=c.budget, policy=c.policy,
                                metrics=metrics, records=records, budget_unit=c.budget_unit, kind=c.kind))
    return RunResult(path=path, run=run, cells=cells)


def drop_torn_tail(path: Path) -> None:
    """Make a JSONL file end with a newline before rows are appended: a half-written last line
    (left by a crash) is cut; a complete last row that lacks only its newline is kept (readers
    counted it as done) and gets the newline. A missing file is left alone."""
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:])
    except ValueError:  # torn: that row is recomputed
        path.write_bytes(data[:cut])
        return
    with open(path, "ab") as f:
        f.write(b"\n")
