"""shepherd_prm: Math-Shepherd style process reward models (a causal LM judging "+"/"-" at a step tag)."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from prmbench.interfaces import Task
from prmbench.reward_models.hf_rm import Encoded, HFRewardModel, label_token_head, locate_tokens

_NUMBERED = re.compile(r"^Step \d+:")


class ShepherdPRM(HFRewardModel):
    """peiyi9979/math-shepherd-mistral-7b-prm and causal-LM PRMs trained the same way.

    Protocol (the model card's): the input is `f"{question} {solution}"` with the tokenizer's bos,
    where the solution is the steps, each written `Step k: TEXT ки`, joined by newlines (steps
    that already start with `Step k:` keep their numbering; `number_steps=false` writes them
    bare). The score of a step is softmax over the logits of exactly the two label tokens ("+",
    "-"; ids 648 and 387 in the Mistral tokenizer) at its tag token ("ки", id 12902), taking "+":
    never a softmax over the whole vocabulary. Only the tags prmbench inserted are read: a step
    whose own text contains "ки" does not gain a score.
    """

    family = "shepherd_prm"
    version = "1"

    def __init__(self, checkpoint: str, step_tag: str = "ки", good_token: str = "+", bad_token: str = "-",
                 number_steps: bool = True, **kwargs: Any):
        super().__init__(checkpoint, **kwargs)
        self.step_tag, self.good_token, self.bad_token = step_tag, good_token, bad_token
        self.number_steps = bool(number_steps)
        self.tag_id = self._tag_id(step_tag)
        self.label_ids = (self._tag_id(good_token), self._tag_id(bad_token))

    def _tag_id(self, text: str) -> int:
        # As the card does: the last token of the text encoded alone (SentencePiece's "▁ки", "▁+", "▁-").
        return int(self.tokenizer(text, add_special_tokens=False)["input_ids"][-1])

    def format_config(self) -> dict[str, Any]:
        """Tag, label tokens and step numbering."""
        return {"step_tag": self.step_tag, "labels": [self.good_token, self.bad_token], "number_steps": self.number_steps}

    def encode(self, task: Task | None, question: str, steps: Sequence[str]) -> Encoded:
        """`question Step 1: a ки\\nStep 2: b ки`; read at each inserted tag."""
        text = question + " "
        spans = []
        for k, step in enumerate(steps, start=1):
            if k > 1:
                text += "\n"
            if self.number_steps and not _NUMBERED.match(step):
                text += f"Step {k}: "
            text += step
            spans.append((len(text), len(text) + 1 + len(self.step_tag)))
            text += " " + self.step_tag
        ids, pos = locate_tokens(self.tokenizer, text, spans, self.tag_id, self.family, add_special_tokens=True)
        return Encoded(tuple(ids), tuple(pos))

    def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
        return label_token_head(self, self.label_ids)
