"""qwen_prm: Qwen2.5-Math-PRM style process reward models (a two-class head at `<extra_0>`)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from prmbench.interfaces import Task
from prmbench.reward_models.checkpoint import read_tensors
from prmbench.reward_models.hf_rm import (Encoded, FormatError, HFRewardModel, count_parameters, load_backbone,
                                          locate_tokens, mlp_head, single_token)

QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


class QwenPRM(HFRewardModel):
    """Qwen2.5-Math-PRM-7B / Qwen2.5-Math-PRM-72B / Qwen2.5-Math-7B-PRM800K (`Qwen2ForProcessRewardModel`).

    Protocol (the model card's): the chat template renders [system, user = question, assistant =
    steps joined by `<extra_0>` and terminated by it], i.e. `"<extra_0>".join(steps) + "<extra_0>"`
    with no extra whitespace; the step score is the softmax probability of class 1 (positive) of
    the two-class head at each `<extra_0>` token (the checkpoint's own single token, id 151651).
    The system prompt defaults to the card's ("Please reason step by step, and put your final
    answer within \\boxed{}."). Weights: a Qwen2 backbone (`model.*`) and the head
    `score.0` Linear(h, h) -> ReLU -> `score.2` Linear(h, 2), loaded by prmbench itself, so the
    checkpoint's remote code is never run.
    """

    family = "qwen_prm"
    version = "1"
    separator = "<extra_0>"

    def __init__(self, checkpoint: str, system_prompt: str | None = QWEN_MATH_SYSTEM, **kwargs: Any):
        super().__init__(checkpoint, **kwargs)
        self.system_prompt = system_prompt
        self.sep_id = single_token(self.tokenizer, self.separator, "step separator", self.family)

    def format_config(self) -> dict[str, Any]:
        """The system prompt."""
        return {"system_prompt": self.system_prompt}

    def encode(self, task: Task | None, question: str, steps: Sequence[str]) -> Encoded:
        """Chat template with `<extra_0>` after every step; read at each separator."""
        content = "".join(s + self.separator for s in steps)
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else [])
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": content}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        at = text.rfind(content)
        if at < 0:
            raise FormatError(f"{self.family}: the chat template of {self.checkpoint!r} changed the assistant message, "
                              f"so the step separators cannot be located")
        spans = []
        for s in steps:
            at += len(s)
            spans.append((at, at + len(self.separator)))
            at += len(self.separator)
        ids, pos = locate_tokens(self.tokenizer, text, spans, self.sep_id, self.family)
        return Encoded(tuple(ids), tuple(pos))

    def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
        import torch

        backbone = load_backbone(self.path, self.torch_dtype, self.family, self.checkpoint)
        head = mlp_head(read_tensors(self.path, "score."), "score.", self.family).to(self.device)

        def probs(h: Any) -> Any:
            return torch.softmax(head(h), dim=-1)[:, 1]

        return backbone, probs, count_parameters(backbone, head)
