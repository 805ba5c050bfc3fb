"""value_head_prm: a backbone plus a scalar value head read at step-end tokens (Skywork-o1-Open-PRM, prmbench's own).

Two checkpoint layouts load:

- **Skywork** (Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B and -7B): a causal-LM checkpoint whose
  weight files also hold `v_head.summary.weight` [1, h] and `v_head.summary.bias` [1] (one
  linear layer). Step token "\\n".
- **prmbench** (written by `save_value_head_checkpoint`, the format training writes): the
  backbone as `save_pretrained` writes it, its tokenizer, `value_head.safetensors` with the
  two-layer head `0.weight` [h, h], `0.bias` [h], `2.weight` [1, h], `2.bias` [1]
  (Linear -> ReLU -> Linear), and `prmbench_value_head.json`:
  `{"format": "prmbench-value-head", "format_version": 1, "head": "mlp2", "step_token": "\\n"}`.

Protocol (Skywork's inference code): ids = tokens of `bos + question + "\\n"`, then for every
step its own tokens followed by the step token's id (appended as a token, never joined as
text); the step score is sigmoid(value head) at each appended step token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from prmbench.errors import ModelLoadError
from prmbench.interfaces import Task
from prmbench.reward_models.checkpoint import read_tensors
from prmbench.reward_models.hf_rm import Encoded, HFRewardModel, count_parameters, load_backbone, mlp_head

META_FILE = "prmbench_value_head.json"
HEAD_FILE = "value_head.safetensors"
FORMAT = "prmbench-value-head"


def save_value_head_checkpoint(out_dir: str | Path, backbone: Any, tokenizer: Any, head: Any, step_token: str = "\n") -> Path:
    """Write a prmbench value-head checkpoint (layout in the module docstring); returns the folder.

    `backbone` is any transformers model AutoModel can reload (a base model or a causal LM),
    `head` a torch Sequential Linear(h, h) -> ReLU -> Linear(h, 1).
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(out / HEAD_FILE),
              metadata={"format": "pt"})
    (out / META_FILE).write_text(json.dumps({"format": FORMAT, "format_version": 1, "head": "mlp2",
                                             "step_token": step_token}, indent=2) + "\n")
    return out


def step_token_id(tokenizer: Any, step_token: str, family: str = "value_head_prm") -> int:
    """The id appended after every step: the last token of `step_token` (ModelLoadError when it encodes to none)."""
    ids = tokenizer(step_token, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ModelLoadError(f"{family}: the step token {step_token!r} encodes to no token")
    return int(ids[-1])


def encode_value_head(tokenizer: Any, step_id: int, question: str, steps: Sequence[str]) -> Encoded:
    """The protocol of the module docstring: bos + question + "\\n", then per step its tokens + `step_id`.

    Shared by scoring (ValueHeadPRM.encode) and training (prmbench.training), so a trained
    checkpoint is read exactly where it was trained.
    """
    ids = list(tokenizer((tokenizer.bos_token or "") + question + "\n", add_special_tokens=False)["input_ids"])
    pos = []
    for step in steps:
        ids += tokenizer(step, add_special_tokens=False)["input_ids"]
        pos.append(len(ids))
        ids.append(step_id)
    return Encoded(tuple(ids), tuple(pos))


class ValueHeadPRM(HFRewardModel):
    """Skywork-o1-Open-PRM-Qwen-2.5-1.5B/7B and prmbench value-head checkpoints (module docstring).

    `step_token` defaults to the checkpoint's own (prmbench layout) or "\\n" (Skywork).
    """

    family = "value_head_prm"
    version = "1"

    def __init__(self, checkpoint: str, step_token: str | None = None, **kwargs: Any):
        super().__init__(checkpoint, **kwargs)
        meta_path = self.path / META_FILE
        self.meta: dict[str, Any] | None = None
        if meta_path.is_file():
            self.meta = json.loads(meta_path.read_text())
            if self.meta.get("format") != FORMAT or self.meta.get("format_version") != 1:
                raise ModelLoadError(f"{self.family}: {meta_path} is not a version-1 prmbench value-head file")
        self.step_token = step_token if step_token is not None else (self.meta or {}).get("step_token", "\n")
        self.step_id = step_token_id(self.tokenizer, self.step_token, self.family)

    def format_config(self) -> dict[str, Any]:
        """Step token and checkpoint layout."""
        return {"step_token": self.step_token, "layout": "prmbench" if self.meta else "skywork"}

    def encode(self, task: Task | None, question: str, steps: Sequence[str]) -> Encoded:
        """bos + question + newline, then each step's tokens plus the step token id; read at those ids."""
        return encode_value_head(self.tokenizer, self.step_id, question, steps)

    def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
        import torch

        backbone = load_backbone(self.path, self.torch_dtype, self.family, self.checkpoint)
        if self.meta is not None:
            from safetensors.torch import load_file

            head = mlp_head(load_file(str(self.path / HEAD_FILE)), HEAD_FILE + ":", self.family)
        else:
            w = read_tensors(self.path, "v_head.summary.")
            if {"weight", "bias"} - w.keys():
                raise ModelLoadError(f"{self.family}: {self.checkpoint!r} has neither {META_FILE} nor the Skywork value "
                                     f"head v_head.summary.weight/bias; it is not a value-head PRM")
            head = torch.nn.Linear(w["weight"].shape[1], 1)
            head.load_state_dict({k: v.float() for k, v in w.items()})
            head = head.float().eval()
        head = head.to(self.device)

        def sigmoid_value(h: Any) -> Any:
            return torch.sigmoid(head(h)[:, 0])

        return backbone, sigmoid_value, count_parameters(backbone, head)
