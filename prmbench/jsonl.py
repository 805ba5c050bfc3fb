"""Reading user-supplied JSONL files (plain or gzip) with errors that name the line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from prmbench.errors import DataError


def read_jsonl_rows(path: str | Path, what: str = "file") -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs of a JSONL file, gzip-compressed or not (detected by content).

    A missing file, a bad gzip stream, non-UTF-8 text, invalid JSON or a line that is not a JSON
    object raises DataError naming `what`, the path and the line. Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{what} {path} is not a valid gzip file ({e}); re-create it") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{what} {path} is not UTF-8 text ({e}); it must be JSONL or JSONL.gz") from None
    rows = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{no}: not valid JSON ({e.msg}); every line must be one JSON object") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{no}: expected a JSON object per line, got {type(row).__name__}")
        rows.append((no, row))
    return rows
