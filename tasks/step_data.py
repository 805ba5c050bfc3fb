"""Finding and reading the data files of step-level tasks (local files first, then the hub)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from prmbench.env import env_flag
from prmbench.errors import DataError
from prmbench.scoring import read_sample_rows

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

Rows = list[tuple[str, Any]]
"""(where, row) pairs: `where` names the file and row for error messages."""


def shared_path(rel: str) -> Path | None:
    """``$PRMBENCH_DATA_DIR/rel`` when the variable is set and the path exists, else None."""
    data_dir = os.environ.get("PRMBENCH_DATA_DIR")
    if not data_dir:
        return None
    p = Path(data_dir).expanduser() / rel
    return p if p.exists() else None


def read_rows(path: Path) -> Rows:
    """(where, row) of a JSON-array, JSONL or JSONL.gz file (rows 0-based in arrays, lines 1-based)."""
    rows = read_sample_rows(path)
    with open(path, "rb") as f:
        array = f.read(64).lstrip().startswith(b"[")
    return [(f"{path}: row {no}" if array else f"{path}:{no}", row) for no, row in rows]


def offline() -> str | None:
    """The variable that turns the hub off (e.g. 'HF_HUB_OFFLINE=1'), or None when online."""
    for v in OFFLINE_VARS:
        if env_flag(v):
            return f"{v}={os.environ[v]}"
    return None


def hub_rows(task: str, source: str, split: str, fix: str, load: Callable[..., Any] | None = None) -> Rows:
    """Rows of a Hugging Face dataset split, or a DataError that says how to supply the data locally."""
    why = offline()
    if why:
        raise DataError(f"{task}: no local data and the Hugging Face hub is off ({why}), so {source!r} "
                        f"cannot be downloaded. {fix}")
    try:
        if load is None:
            import datasets

            load = datasets.load_dataset
        ds = load(source, split=split)
        return [(f"{source}[{split}] row {i}", dict(r)) for i, r in enumerate(ds)]
    except Exception as e:  # network, missing dataset, auth, bad split, ...
        raise DataError(f"{task}: cannot load {source!r} (split {split!r}) from the Hugging Face hub: "
                        f"{type(e).__name__}: {str(e)[:300]}. {fix}") from e


def field(where: str, row: Any, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    """`row[name]` checked to be of `kind`, else a DataError naming the row and the field."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if name not in row:
        raise DataError(f"{where}: missing field `{name}` ({what})")
    value = row[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))):
        raise DataError(f"{where}: field `{name}` must be {what}, got {type(value).__name__} {str(value)[:60]!r}")
    return value


def string_list(where: str, row: Any, name: str) -> list[str]:
    """A non-empty list of strings in `row[name]`, else a DataError naming the row and the field."""
    value = field(where, row, name, list, "a non-empty list of step strings")
    if not value or not all(isinstance(s, str) for s in value):
        raise DataError(f"{where}: field `{name}` must be a non-empty list of step strings")
    return list(value)
