"""Train a small Qwen2-architecture causal LM from scratch on one lab domain; cached by config hash.

The model learns to continue the task's own prompt (rendered through the saved chat template, as
`prmbench.policies.hf` renders it at generation time) with the reference solution and eos. The
loss covers only the solution tokens (masking the random question is what makes learning fast,
see ../shared/LAB_NOTES.md). AdamW with linear warm-up and cosine decay; training problems come
from the task's ``train`` split, never from the ``test`` split the lab evaluates on.

`train_policy(spec, cache_dir)` returns the model folder ``cache_dir/policy-<hash>``; the folder
is complete (``train_log.json`` is written last) or it is rebuilt, so a second call with the same
spec trains nothing. The folder loads with ``--policy hf:DIR``.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prmbench.errors import ConfigError
from prmbench.interfaces import config_hash

TRAINER_VERSION = "2"
DOMAINS = ("lab_math", "lab_code")


@dataclass(frozen=True)
class PolicySpec:
    """Everything that decides a trained policy (its hash names the cache folder)."""

    task: str = "lab_math"
    min_steps: int = 2
    max_steps: int = 4
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    steps: int = 600
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 50
    train_problems: int = 8000
    seed: int = 0
    #: The teacher's per-step slip rate (`prmbench.lab.problems.ArithProblem.draw_slips`): the
    #: policy learns to err at about this rate, which sets its single-sample accuracy robustly
    #: (once it has learned the arithmetic, it stays where the teacher is, whatever the seed).
    teacher_error: float = 0.0

    def validate(self) -> None:
        """Raise ConfigError for an unknown domain or impossible sizes."""
        if self.task not in DOMAINS:
            raise ConfigError(f"lab policy: task must be one of {', '.join(DOMAINS)} (got {self.task!r})")
        if not 0.0 <= self.teacher_error < 1.0:
            raise ConfigError(f"lab policy: teacher_error must be in [0, 1) (got {self.teacher_error})")
        for name in ("hidden", "layers", "heads", "steps", "batch", "train_problems"):
            if getattr(self, name) < 1:
                raise ConfigError(f"lab policy: {name} must be positive (got {getattr(self, name)})")
        if self.hidden % self.heads:
            raise ConfigError(f"lab policy: hidden ({self.hidden}) must be a multiple of heads ({self.heads})")

    def key(self) -> str:
        """The cache key: a hash of the spec and the trainer version."""
        return config_hash({**asdict(self), "trainer": TRAINER_VERSION})


def make_task(spec: PolicySpec, split: str, n_problems: int) -> Any:
    """The spec's lab task on `split` (no sandbox is started: training only renders text)."""
    from prmbench.tasks.lab_code import LabCodeTask
    from prmbench.tasks.lab_math import LabMathTask

    cls = LabMathTask if spec.task == "lab_math" else LabCodeTask
    return cls(n_problems=n_problems, min_steps=spec.min_steps, max_steps=spec.max_steps, seed=spec.seed, split=split)


def teacher_solution(spec: PolicySpec, task: Any, index: int) -> str:
    """The teacher's solution of training problem `index`: the reference, with seeded slips at rate
    ``spec.teacher_error``."""
    import random

    a = task.arith(index)
    slips = a.draw_slips(random.Random(f"{spec.seed}/{index}"), spec.teacher_error) if spec.teacher_error else {}
    return task.join_steps(a.math_steps(slips) if spec.task == "lab_math" else a.code_steps(slips))


def _examples(spec: PolicySpec, tokenizer: Any) -> tuple[list[list[int]], list[int]]:
    """Token ids of prompt + teacher solution + eos per training problem, and each prompt's length."""
    task = make_task(spec, "train", spec.train_problems)
    ids, prompt_lens = [], []
    for i, p in enumerate(task.load()):
        prompt = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in task.prompt(p)],
                                               add_generation_prompt=True, tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        s_ids = tokenizer(teacher_solution(spec, task, i), add_special_tokens=False)["input_ids"]
        ids.append(p_ids + s_ids + [tokenizer.eos_token_id])
        prompt_lens.append(len(p_ids))
    return ids, prompt_lens


def model_config(spec: PolicySpec, vocab_size: int, eos_id: int, pad_id: int) -> Any:
    """The Qwen2 configuration of a spec (tied embeddings, MLP 4 x hidden)."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab_size, hidden_size=spec.hidden, intermediate_size=4 * spec.hidden,
                       num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
                       max_position_embeddings=256, tie_word_embeddings=True, eos_token_id=eos_id,
                       pad_token_id=pad_id, bos_token_id=None, use_sliding_window=False)


def train_policy(spec: PolicySpec, cache_dir: Path, progress: bool = True, threads: int = 1) -> Path:
    """Train (or reuse) the policy of `spec` under `cache_dir` with `threads` torch threads; return its folder."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    from prmbench.lab.tokenizer import build_tokenizer

    spec.validate()
    out = Path(cache_dir) / f"policy-{spec.key()}"
    if (out / "train_log.json").is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = build_tokenizer(tmp)
    ids, prompt_lens = _examples(spec, tokenizer)
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(model_config(spec, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id))
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < spec.warmup:
            return (step + 1) / spec.warmup
        t = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(spec.seed)
    started, losses, tokens = time.perf_counter(), [], 0
    model.train()
    for step in range(spec.steps):
        rows = torch.randint(len(ids), (spec.batch,), generator=gen).tolist()
        width = max(len(ids[r]) for r in rows)
        x = torch.full((spec.batch, width), tokenizer.pad_token_id, dtype=torch.long)
        y = torch.full((spec.batch, width), -100, dtype=torch.long)
        mask = torch.zeros((spec.batch, width), dtype=torch.long)
        for i, r in enumerate(rows):
            seq = torch.tensor(ids[r])
            x[i, :len(seq)] = seq
            y[i, prompt_lens[r]:len(seq)] = seq[prompt_lens[r]:]
            mask[i, :len(seq)] = 1
        loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += int(mask.sum())
        losses.append(round(loss.item(), 4))
        if progress and (step % 100 == 0 or step == spec.steps - 1):
            print(f"  train {spec.task} h{spec.hidden}x{spec.layers} seed {spec.seed}: step {step + 1}/{spec.steps} "
                  f"loss {loss.item():.3f}", file=sys.stderr)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(str(tmp), safe_serialization=True)
    log = {"spec": asdict(spec), "key": spec.key(), "parameters": params, "train_tokens": tokens,
           "train_flops": 6 * params * tokens, "seconds": round(time.perf_counter() - started, 2),
           "final_loss": sum(losses[-20:]) / len(losses[-20:]), "losses": losses}
    (tmp / "train_log.json").write_text(json.dumps(log, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
