"""Train the lab's PRMs with `prmbench train-prm` (`prmbench.training.train_prm`) on Monte Carlo labels.

Each PRM is a lab policy's transformer plus a value head, trained by the transformers Trainer on
a ``prmbench label`` file (hard labels, ``prmbench:PATH``); it loads as ``value_head_prm:DIR``.
Unfiltered PRMs train on annotator a's own labels of every solution (`annotator_labels`), plus
its Monte Carlo rollouts as labelled solutions of their own (`rollout_rows`: each rollout is a
graded complete solution, so the labelling's rollouts are reused as training data);
`filtered` PRMs on the consensus-filtered rows (`filter_consensus`: the solutions whose first
error both annotators placed alike, what ``prmbench label --consensus all`` keeps) and their
rollouts. The
output folder is ``prm-<hash>`` of the spec, the backbone and the label file's content; a
finished one (``prmbench_training.json`` status ``complete``) is reused, an interrupted one
resumes from its newest Trainer checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from prmbench.errors import DataError
from prmbench.interfaces import config_hash
from prmbench.lab.config import PRMSpec

PRM_TRAINER_VERSION = "2"
#: How lab solutions separate their steps (both lab tasks split on blank lines).
STEP_SEPARATOR = "\n\n"
RECORD = "prmbench_training.json"


def agree(row: dict[str, Any]) -> bool:
    """True when the row's annotators put the first error at the same step (ASLAF keeps it)."""
    return bool((row.get("consensus") or {}).get("agree"))


def filter_consensus(labels_path: Path, out: Path, rollouts: bool = True) -> Path:
    """The consensus-filtered set: `annotator_labels` of the rows whose annotators agree."""
    return annotator_labels(labels_path, out, rollouts=rollouts, keep=agree)


def rollout_rows(row: dict[str, Any], annotator: str, seen: set[str]) -> list[dict[str, Any]]:
    """The Monte Carlo rollouts of `annotator` in label row `row` as labelled solutions of their own.

    A rollout is a complete solution whose grade is known: a correct one has every step good (each
    prefix has a correct continuation: itself), a wrong one has a bad last step (its final answer
    is wrong) and unknown earlier steps. Texts already in `seen` are skipped (and new ones added).
    """
    out = []
    for per_step in row.get("rollouts") or []:
        for r in per_step:
            text = r.get("text")
            if r.get("annotator") != annotator or not isinstance(text, str) or text in seen:
                continue
            seen.add(text)
            steps = [x for x in (t.strip() for t in text.split(STEP_SEPARATOR)) if x]
            if not steps:
                continue
            labels = [1.0] * len(steps) if r.get("correct") else [None] * (len(steps) - 1) + [0.0]
            out.append({"problem_id": row["problem_id"], "task": row.get("task"), "question": row["question"],
                        "steps": steps, "text": text, "labels": labels, "mc_values": labels,
                        "first_error": None if r.get("correct") else len(steps) - 1,
                        "solution_correct": bool(r.get("correct")), "source": "rollout"})
    return out


def annotator_labels(labels_path: Path, out: Path, annotator: int = 0, rollouts: bool = True,
                     keep: Callable[[dict[str, Any]], bool] | None = None) -> Path:
    """Write the rows of `labels_path` (those `keep` accepts; all when None) with the labels of their
    `annotator`-th annotator alone (its own ``mc_values``, ``labels`` and ``first_error`` from
    ``per_annotator``), and with `rollouts` that annotator's rollouts as rows of their own
    (`rollout_rows`), to `out`; return it.

    Without `keep` this is the unfiltered set: one annotator's Monte Carlo labels on every solution,
    as a single labeller (Math-Shepherd style) makes them; the row's combined labels keep only the
    steps all annotators label alike, a filter of their own.
    """
    rows: list[str] = []
    seen: set[str] = set()
    for ln in labels_path.read_text().splitlines():
        if not ln.strip():
            continue
        row = json.loads(ln)
        if keep is not None and not keep(row):
            continue
        name = row["annotators"][annotator]["name"]
        own = row["per_annotator"][name]
        seen.add(row.get("text", ""))
        rows.append(json.dumps({**row, "mc_values": own["mc_values"], "labels": own["labels"],
                                "first_error": own["first_error"]}))
        if rollouts:
            rows += [json.dumps(r) for r in rollout_rows(row, name, seen)]
    if not rows:
        raise DataError(f"{labels_path}: no labelled solution to train on; label more problems")
    _write_lines(out, rows)
    return out


def _write_lines(out: Path, rows: list[str]) -> None:
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(out)


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
