"""The files of a `train-prm` output folder besides the checkpoint: the training log and the record.

- `training_log.jsonl`: appended one flushed row at a time (training rows and evaluation rows);
  on --resume the rows after the checkpoint resumed from are dropped (they are redone).
- `prmbench_training.json`: written atomically at the start and at every save (train_prm.py).

Only the main process (rank 0 of a torchrun / accelerate launch) checks and writes these files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from prmbench.errors import ConfigError
from prmbench.training.config import RESUMABLE_CHANGES, TrainConfig

LOG_FILE = "training_log.jsonl"
RECORD_FILE = "prmbench_training.json"
RECORD_VERSION = 1


def log(msg: str) -> None:
    """A progress line on stderr (main process only)."""
    if is_main_process():
        print(f"train-prm: {msg}", file=sys.stderr, flush=True)


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch (or a single process): the one that checks and writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def prepare_output(cfg: TrainConfig) -> Path | None:
    """Check the output folder; on --resume return the newest Trainer checkpoint (and trim the log to it).

    Only the main process checks and trims; the other ranks of a multi-process launch just find
    the checkpoint to resume from.
    """
    out = Path(cfg.output)
    if not is_main_process():
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(out)) if cfg.resume and out.is_dir() else None
        return Path(last) if last else None
    record = out / RECORD_FILE
    checkpoints = sorted(out.glob("checkpoint-*")) if out.is_dir() else []
    if not cfg.resume:
        if record.exists() or checkpoints:
            raise ConfigError(f"--output {out} already holds a training run; continue it with --resume or choose a "
                              f"new --output folder")
        return None
    if not record.is_file():
        raise ConfigError(f"--resume: {out} has no {RECORD_FILE}, so no training run to continue; drop --resume")
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    old = json.loads(record.read_text()).get("config", {})
    new = cfg.to_json()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if changed:
        raise ConfigError(f"--resume with different settings ({', '.join(f'{k}: {old.get(k)!r} -> {new[k]!r}' for k in changed)}); "
                          f"use the original flags (only {', '.join(sorted(RESUMABLE_CHANGES - {'resume', 'output'}))} may change)")
    if last is None:
        log(f"no checkpoint-N in {out} yet: starting from step 0")
        trim_log(out / LOG_FILE, -1)  # everything is redone, the step-0 evaluation included
        return None
    step = int(json.loads((Path(last) / "trainer_state.json").read_text())["global_step"])
    trim_log(out / LOG_FILE, step)
    log(f"resuming from {last} (step {step})")
    return Path(last)


def trim_log(path: Path, step: int) -> None:
    """Drop log rows after `step` (written after the checkpoint we resume from; they are redone)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line of an interrupted write
        if int(row.get("step", 0)) <= step:
            keep.append(json.dumps(row))
    path.write_text("".join(k + "\n" for k in keep))


def append_log(path: Path, row: dict[str, Any]) -> None:
    """Append one flushed JSON line to the training log."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
