"""`prmbench label-merge`: mix label sets into one prmbench label file.

Sources are read with `read_labels` (FMT:PATH). Solutions are deduplicated by (question, steps)
after whitespace normalisation, across and within sources, keeping the first occurrence in
source order. `equal_size=N` then draws N solutions from each source without replacement
(seeded; kept in file order), as the paper mixes equal shares of each data set; a source with
fewer than N solutions contributes all of them, with a warning. The output rows carry `source`
and `source_file`/`source_line`; soft values stay as read (a `prmbench_soft` source keeps its
Monte Carlo values as labels). `OUT.meta.json` records the counts per source.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from prmbench.errors import ConfigError
from prmbench.labels.labelling import sidecar
from prmbench.labels.readers import LabelledSolution, parse_spec, read_labels
from prmbench.results import write_json_atomic


def dedup_key(sol: LabelledSolution) -> str:
    """A hash of the question and steps with runs of whitespace collapsed."""
    norm = [" ".join(sol.question.split()), *(" ".join(s.split()) for s in sol.steps)]
    return hashlib.sha256(json.dumps(norm, ensure_ascii=False).encode()).hexdigest()


def to_row(sol: LabelledSolution) -> dict[str, Any]:
    """A prmbench label-file row of a labelled solution."""
    row: dict[str, Any] = {"problem_id": sol.problem_id, "question": sol.question, "steps": list(sol.steps),
                           "labels": list(sol.labels), "first_error": sol.first_error, "source": sol.source}
    for key in ("task", "mc_values", "annotators", "search"):
        if key in sol.meta:
            row[key] = sol.meta[key]
    if "file" in sol.meta:
        row["source_file"], row["source_line"] = sol.meta["file"], sol.meta.get("line")
    return row


def merge_labels(sources: Sequence[str], output: Path, equal_size: int | None = None, seed: int = 0,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Merge `sources` (FMT:PATH) into `output`; returns the per-source counts written to OUT.meta.json."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    for spec in sources:
        parse_spec(spec)  # a bad spec fails before any reading
    if len(set(sources)) != len(sources):
        raise ConfigError("a source is named twice; give each FMT:PATH once")
    seen: set[str] = set()
    picked: list[list[LabelledSolution]] = []
    counts: list[dict[str, Any]] = []
    for spec in sources:
        kept, n_read = [], 0
        for sol in read_labels(spec):
            n_read += 1
            key = dedup_key(sol)
            if key in seen:
                continue
            seen.add(key)
            kept.append(sol)
        info: dict[str, Any] = {"source": spec, "read": n_read, "duplicates": n_read - len(kept), "unique": len(kept)}
        if equal_size is not None:
            if len(kept) < equal_size:
                log(f"warning: {spec} has {len(kept)} unique solutions, fewer than --equal-size {equal_size}; "
                    f"taking all of them")
            else:
                idx = sorted(random.Random(f"{seed}:{spec}").sample(range(len(kept)), equal_size))
                kept = [kept[i] for i in idx]
        info["written"] = len(kept)
        picked.append(kept)
        counts.append(info)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w") as f:
            for sols in picked:
                for sol in sols:
                    f.write(json.dumps(to_row(sol), ensure_ascii=False, separators=(",", ":")) + "\n")
    except OSError as e:
        raise ConfigError(f"cannot write --output {output}: {e.strerror or e}; choose a writable path") from e
    meta = {"kind": "prmbench-label-merge", "sources": counts, "equal_size": equal_size, "seed": seed,
            "written": sum(c["written"] for c in counts)}
    write_json_atomic(sidecar(output, "meta.json"), meta)
    for c in counts:
        log(f"{c['source']}: read {c['read']}, {c['duplicates']} duplicates, wrote {c['written']}")
    log(f"{meta['written']} solutions -> {output}")
    return meta
