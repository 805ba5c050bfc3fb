"""The settings of one `train-prm` run (the CLI flags map one to one) and which may change on --resume."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from prmbench.errors import ConfigError

#: Fields that may change between a run and its --resume (everything else must match).
RESUMABLE_CHANGES = {"max_steps", "resume", "eval_task", "eval_every", "eval_limit", "eval_task_args", "save_every",
                     "log_every", "output", "device", "save_total_limit"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train-prm` needs; the CLI flags map one to one (see `prmbench train-prm --help`)."""

    backbone: str
    data: str
    output: str
    max_steps: int = 1000
    learning_rate: float = 2e-5
    head_learning_rate: float = 1e-3
    batch_size: int = 8
    grad_accum: int = 1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    max_length: int = 2048
    step_token: str = "\n"
    seed: int = 0
    precision: str = "auto"
    gradient_checkpointing: bool = False
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    fsdp: str = ""
    device: str = "auto"
    save_every: int = 200
    save_total_limit: int = 2
    log_every: int = 10
    eval_task: str | None = None
    eval_every: int = 100
    eval_limit: int | None = None
    eval_task_args: dict[str, Any] = field(default_factory=dict)
    pretrain_tokens: float | None = None
    resume: bool = False

    def validate(self) -> None:
        """Reject values the Trainer would fail on later, with the flag to fix."""
        positive = {"max_steps": "--max-steps", "batch_size": "--batch-size", "grad_accum": "--grad-accum",
                    "max_length": "--max-length", "save_every": "--save-every", "log_every": "--log-every",
                    "eval_every": "--eval-every", "lora_r": "--lora-r"}
        for name, flag in positive.items():
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{flag} must be a positive integer (got {v!r})")
        for name, flag in (("learning_rate", "--learning-rate"), ("head_learning_rate", "--head-learning-rate")):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ConfigError(f"{flag} must be a positive number (got {v!r})")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError("--warmup-steps and --weight-decay must be >= 0")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--precision must be auto, bf16 or fp32 (got {self.precision!r})")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device must be auto, cpu or cuda (got {self.device!r})")
        if self.pretrain_tokens is not None and self.pretrain_tokens < 0:
            raise ConfigError(f"--pretrain-tokens must be >= 0 (got {self.pretrain_tokens})")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ConfigError(f"--eval-limit must be >= 1 (got {self.eval_limit})")
        if self.eval_task and self.fsdp:
            raise ConfigError("--eval-task runs the live model on one process, which FSDP shards; evaluate the "
                              "saved checkpoint afterwards instead (drop --eval-task or --fsdp)")
        if not self.step_token:
            raise ConfigError("--step-token must not be empty")

    def to_json(self) -> dict[str, Any]:
        """The hyper-parameters as recorded in prmbench_training.json."""
        return dataclasses.asdict(self)
