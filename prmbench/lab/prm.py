"""Train the lab's PRMs with `prmbench train-prm` (`prmbench.training.train_prm`) on Monte Carlo labels.

Each PRM is a lab policy's transformer plus a value head, trained by the transformers Trainer on
a ``prmbench label`` file (hard labels, ``prmbench:PATH``); it loads as ``value_head_prm:DIR``.
`filtered` PRMs train on the consensus-filtered file (`filter_consensus`: the solutions whose
first error both annotators placed alike, what ``prmbench label --consensus all`` keeps). The
output folder is ``prm-<hash>`` of the spec, the backbone and the label file's content; a
finished one (``prmbench_training.json`` status ``complete``) is reused, an interrupted one
resumes from its newest Trainer checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from prmbench.errors import DataError
from prmbench.interfaces import config_hash
from prmbench.lab.config import PRMSpec

PRM_TRAINER_VERSION = "2"
RECORD = "prmbench_training.json"


def filter_consensus(labels_path: Path, out: Path) -> Path:
    """Write the rows of `labels_path` whose annotators agree (``consensus.agree``) to `out`; return it."""
    rows = [ln for ln in labels_path.read_text().splitlines()
            if ln.strip() and (json.loads(ln).get("consensus") or {}).get("agree")]
    if not rows:
        raise DataError(f"{labels_path}: no solution on which the annotators agree; label more problems")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(out)
    return out


def prm_key(spec: PRMSpec, backbone_dir: Path, labels_path: Path) -> str:
    """Cache key: the spec, the backbone folder's name (a config hash) and the label file's content."""
    digest = hashlib.sha256(labels_path.read_bytes()).hexdigest()[:16]
    return config_hash({**asdict(spec), "backbone": backbone_dir.name, "labels": digest, "v": PRM_TRAINER_VERSION})


def is_complete(out: Path) -> bool:
    """True when `out` holds a finished train-prm run."""
    record = out / RECORD
    return record.is_file() and json.loads(record.read_text()).get("status") == "complete"


def train_prm(spec: PRMSpec, backbone_dir: Path, labels_path: Path, cache_dir: Path, seed: int = 0,
              threads: int = 1) -> Path:
    """Train (or reuse, or resume) the PRM of `spec` with train-prm; return its checkpoint folder."""
    import torch

    from prmbench.training.config import TrainConfig
    from prmbench.training.train_prm import train_prm as run_train_prm

    out = Path(cache_dir) / f"prm-{prm_key(spec, backbone_dir, labels_path)}"
    if is_complete(out):
        return out
    torch.set_num_threads(max(1, threads))
    cfg = TrainConfig(backbone=str(backbone_dir), data=f"prmbench:{labels_path}", output=str(out),
                      max_steps=spec.steps, learning_rate=spec.lr, head_learning_rate=spec.lr,
                      batch_size=spec.batch, warmup_steps=min(20, spec.steps // 10), seed=seed, device="cpu",
                      precision="fp32", save_every=max(1, spec.steps // 2), save_total_limit=1,
                      log_every=max(1, spec.steps // 5), resume=(out / RECORD).is_file())
    run_train_prm(cfg)
    return out
