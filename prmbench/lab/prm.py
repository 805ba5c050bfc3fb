"""Train the lab's PRMs: a policy's transformer plus a value head, BCE on Monte Carlo step labels.

Interim trainer (the lab's own, small): it writes the prmbench value-head checkpoint layout
(`prmbench.reward_models.value_head_prm.save_value_head_checkpoint`), so a PRM loads as
``value_head_prm:DIR`` in `prmbench run` and `prmbench score`, and encodes each solution exactly
as that reward model reads it (question + newline, each step's tokens then the step token; the
score is read at the step tokens). `filtered` keeps only the solutions whose first error both
annotators placed alike (the ASLAF consensus recorded in the label file).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prmbench.errors import DataError
from prmbench.interfaces import config_hash
from prmbench.lab.config import PRMSpec

PRM_TRAINER_VERSION = "1"
STEP_TOKEN = "\n"


def _examples(labels_path: Path, tokenizer: Any, filtered: bool) -> list[tuple[list[int], list[int], list[float]]]:
    """(ids, step-token positions, labels) per labelled solution of `labels_path`."""
    from prmbench.labels.readers import read_labels

    agree = [bool((json.loads(ln).get("consensus") or {}).get("agree"))
             for ln in labels_path.read_text().splitlines() if ln.strip()]
    step_id = tokenizer.convert_tokens_to_ids(STEP_TOKEN)
    out = []
    for ok, sol in zip(agree, read_labels(f"prmbench:{labels_path}")):
        if filtered and not ok:
            continue
        ids = list(tokenizer(sol.question + STEP_TOKEN, add_special_tokens=False)["input_ids"])
        pos, ys = [], []
        for step, y in zip(sol.steps, sol.labels):
            ids += tokenizer(step, add_special_tokens=False)["input_ids"]
            if y is not None:
                pos.append(len(ids))
                ys.append(float(y))
            ids.append(step_id)
        if pos:
            out.append((ids, pos, ys))
    return out


def prm_key(spec: PRMSpec, backbone_dir: Path, labels_path: Path) -> str:
    """Cache key: the spec, the backbone folder's name (a config hash) and the label file's content."""
    import hashlib

    digest = hashlib.sha256(labels_path.read_bytes()).hexdigest()[:16]
    return config_hash({**asdict(spec), "backbone": backbone_dir.name, "labels": digest, "v": PRM_TRAINER_VERSION})


def train_prm(spec: PRMSpec, backbone_dir: Path, labels_path: Path, cache_dir: Path, seed: int = 0,
              threads: int = 1) -> Path:
    """Train (or reuse) the PRM of `spec`; return its checkpoint folder (``prm-<hash>``)."""
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from prmbench.reward_models.value_head_prm import save_value_head_checkpoint

    out = Path(cache_dir) / f"prm-{prm_key(spec, backbone_dir, labels_path)}"
    if (out / "train_log.json").is_file():
        return out
    tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
    data = _examples(labels_path, tokenizer, spec.filtered)
    if not data:
        raise DataError(f"{labels_path}: no labelled steps to train {spec.name} on (filtered={spec.filtered}); "
                        f"label more problems (a larger label set)")
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(seed)
    backbone = Qwen2ForCausalLM.from_pretrained(str(backbone_dir)).model
    h = backbone.config.hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Linear(h, 1))
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    started, losses, tokens = time.perf_counter(), [], 0
    pad = tokenizer.pad_token_id
    for step in range(spec.steps):
        rows = [data[i] for i in torch.randint(len(data), (spec.batch,), generator=gen).tolist()]
        width = max(len(r[0]) for r in rows)
        x = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for i, (ids, _, _) in enumerate(rows):
            x[i, :len(ids)] = torch.tensor(ids)
            mask[i, :len(ids)] = 1
        hidden = backbone(input_ids=x, attention_mask=mask).last_hidden_state
        bi = torch.tensor([i for i, r in enumerate(rows) for _ in r[1]])
        pi = torch.tensor([p for r in rows for p in r[1]])
        y = torch.tensor([v for r in rows for v in r[2]])
        logits = head(hidden[bi, pi])[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += int(mask.sum())
        losses.append(round(loss.item(), 4))
        if step % 100 == 0 or step == spec.steps - 1:
            print(f"  prm {spec.name}: step {step + 1}/{spec.steps} loss {loss.item():.3f}", file=sys.stderr)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_value_head_checkpoint(tmp, backbone.eval(), tokenizer, head.eval(), step_token=STEP_TOKEN)
    n_params = sum(p.numel() for p in params)
    log = {"spec": asdict(spec), "name": spec.name, "backbone": str(backbone_dir), "labels": str(labels_path),
           "solutions": len(data), "parameters": n_params, "train_tokens": tokens,
           "train_flops": 6 * n_params * tokens, "seconds": round(time.perf_counter() - started, 2),
           "final_loss": sum(losses[-20:]) / len(losses[-20:]), "losses": losses}
    (tmp / "train_log.json").write_text(json.dumps(log, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
