"""rlhflow_prm: RLHFlow multi-turn "+"/"-" process reward models."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from prmbench.errors import ModelLoadError
from prmbench.interfaces import Task
from prmbench.reward_models.hf_rm import Encoded, FormatError, HFRewardModel, label_token_head, locate_tokens


class RLHFlowPRM(HFRewardModel):
    """RLHFlow/Llama3.1-8B-PRM-Mistral-Data and RLHFlow/Llama3.1-8B-PRM-Deepseek-Data.

    Protocol (RLHFlow's evaluation code): a conversation with one user turn per step (the first
    one is `question + " " + step 1`) each answered by an assistant turn "+", rendered with the
    checkpoint's chat template (Llama 3.1). The score of step k is the softmax over the two label
    tokens "+" and "-" only, at the position that predicts the k-th assistant "+" (the token
    before it), taking "+". One forward pass over the whole conversation gives every step's score;
    it equals scoring each prefix conversation on its own, because later turns cannot influence
    earlier positions of a causal model.
    """

    family = "rlhflow_prm"
    version = "1"

    def __init__(self, checkpoint: str, good_token: str = "+", bad_token: str = "-", **kwargs: Any):
        super().__init__(checkpoint, **kwargs)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelLoadError(f"{self.family}: {checkpoint!r} has no chat template; RLHFlow PRMs are read through "
                                 f"their Llama 3.1 chat template (tokenizer_config.json)")
        self.good_token, self.bad_token = good_token, bad_token
        self.label_ids = tuple(int(self.tokenizer(t, add_special_tokens=False)["input_ids"][-1])
                               for t in (good_token, bad_token))

    def format_config(self) -> dict[str, Any]:
        """The label tokens."""
        return {"labels": [self.good_token, self.bad_token]}

    def encode(self, task: Task | None, question: str, steps: Sequence[str]) -> Encoded:
        """One user turn per step, each answered "+"; read before every "+".

        Each label's place is where the template opens that turn's assistant message (the
        conversation up to the turn, rendered with the generation prompt), never a text search
        that a template trimming contents (Llama 3.1 strips them) could send to another turn. A
        template that does not render the label there, or whose conversation does not extend its
        prefixes, is a FormatError naming the step.
        """
        users = [question + " " + steps[0], *steps[1:]]
        conv: list[dict[str, str]] = []
        heads: list[str] = []
        for u in users:
            conv.append({"role": "user", "content": u})
            heads.append(self.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True))
            conv.append({"role": "assistant", "content": self.good_token})
        text = self.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)
        spans = []
        for k, head in enumerate(heads, start=1):
            end = len(head) + len(self.good_token)
            if not text.startswith(head) or text[len(head):end] != self.good_token:
                raise FormatError(f"{self.family}: the chat template does not render step {k}'s label "
                                  f"{self.good_token!r} right where its assistant turn opens, so its score "
                                  f"position is unknown; use the checkpoint's own Llama 3.1 chat template")
            spans.append((len(head), end))
        ids, pos = locate_tokens(self.tokenizer, text, spans, self.label_ids[0], self.family)
        return Encoded(tuple(ids), tuple(p - 1 for p in pos))

    def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
        return label_token_head(self, self.label_ids)  # type: ignore[arg-type]
