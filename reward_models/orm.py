"""orm: outcome reward models with a scalar sequence-classification head, normalised to [0, 1]."""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence

from prmbench.errors import ConfigError, ModelLoadError
from prmbench.interfaces import Task
from prmbench.reward_models.checkpoint import read_tensors
from prmbench.reward_models.hf_rm import Encoded, HFRewardModel, count_parameters, load_backbone, mlp_head

NORMALIZERS = ("sigmoid", "none")

#: `--rm orm` without a checkpoint. Skywork-Reward-Llama-3.1-8B-v0.2 is a general outcome RM (its
#: preference data is not limited to math, which matters for math-vs-code questions), of the
#: same size class as the 7-8B PRMs, and a standard `LlamaForSequenceClassification` checkpoint
#: (no remote code). The math-only Qwen2.5-Math-RM-72B is the preset `qwen25_math_rm_72b`.
DEFAULT_ORM = "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2"


class OutcomeRM(HFRewardModel):
    """Skywork/Skywork-Reward-Llama-3.1-8B-v0.2 (any `*ForSequenceClassification` with one label) and
    Qwen/Qwen2.5-Math-RM-72B (`Qwen2ForRewardModel`: head `score.0` Linear(h, h) -> ReLU ->
    `score.2` Linear(h, 1), loaded by prmbench without the checkpoint's remote code).

    Protocol (both model cards): the chat template renders [system (optional), user = question,
    assistant = the solution, steps joined by the task's step delimiter]; the reward is the head's
    scalar at the last token. It is one score per candidate (kind "orm"); `normalize=sigmoid`
    (default) maps the raw logit to sigmoid(logit_scale * logit + logit_bias) in [0, 1] so scores
    are comparable across problems and usable as voting weights; `normalize=none` keeps the raw
    logit (outside [0, 1]: for analysis, not for weighted voting).
    """

    kind: ClassVar[str] = "orm"
    family = "orm"
    version = "1"

    def __init__(self, checkpoint: str = DEFAULT_ORM, system_prompt: str | None = None, normalize: str = "sigmoid",
                 logit_scale: float = 1.0, logit_bias: float = 0.0, aggregation: str = "last", **kwargs: Any):
        super().__init__(checkpoint, aggregation=aggregation, **kwargs)
        if normalize not in NORMALIZERS:
            raise ConfigError(f"orm: normalize must be one of {', '.join(NORMALIZERS)} (got {normalize!r})")
        if not (math.isfinite(float(logit_scale)) and math.isfinite(float(logit_bias))) or float(logit_scale) == 0:
            raise ConfigError("orm: logit_scale must be a non-zero number and logit_bias a number")
        self.system_prompt, self.normalize = system_prompt, normalize
        self.logit_scale, self.logit_bias = float(logit_scale), float(logit_bias)
        self.mlp_layout = "Qwen2ForRewardModel" in (getattr(self.hf_config, "architectures", None) or [])

    def format_config(self) -> dict[str, Any]:
        """System prompt and normalisation."""
        return {"system_prompt": self.system_prompt, "normalize": self.normalize,
                "logit_scale": self.logit_scale, "logit_bias": self.logit_bias}

    def encode(self, task: Task | None, question: str, steps: Sequence[str]) -> Encoded:
        """Chat-rendered (question, solution); read at the last token."""
        response = task.join_steps(steps) if task is not None else "\n\n".join(steps)
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer(question + "\n\n" + response)["input_ids"]
        return Encoded(tuple(ids), (len(ids) - 1,))

    def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
        import torch

        if self.mlp_layout:
            backbone = load_backbone(self.path, self.torch_dtype, self.family, self.checkpoint)
            head = mlp_head(read_tensors(self.path, "score."), "score.", self.family)
            n = count_parameters(backbone, head)
        else:
            from transformers import AutoModelForSequenceClassification

            try:
                model = AutoModelForSequenceClassification.from_pretrained(str(self.path), dtype=self.torch_dtype)
            except Exception as e:
                raise ModelLoadError(f"orm: cannot load {self.checkpoint!r} as a sequence classifier: "
                                     f"{str(e).splitlines()[0]}") from None
            head = getattr(model, "score", None)
            head = head if head is not None else getattr(model, "classifier", None)
            if head is None or getattr(model.config, "num_labels", 1) != 1:
                raise ModelLoadError(f"orm: {self.checkpoint!r} is not a scalar reward model (needs one label and a "
                                     f"score head, got num_labels={getattr(model.config, 'num_labels', None)})")
            backbone, n = model.base_model, count_parameters(model)
            head = head.float()
        head = head.to(self.device).eval()
        scale, bias, squash = self.logit_scale, self.logit_bias, self.normalize == "sigmoid"

        def reward(h: Any) -> Any:
            logit = head(h)[:, 0]
            return torch.sigmoid(logit * scale + bias) if squash else logit

        return backbone, reward, n
