"""The value-head PRM being trained: a transformer backbone plus a two-layer scalar head.

The head is Linear(h, h) -> ReLU -> Linear(h, 1), the "mlp2" head of prmbench's value-head
checkpoint format (reward_models/value_head_prm.py), so a trained model saves with
`save_value_head_checkpoint` and loads unchanged as `--rm value_head_prm:DIR`.

Loss (the paper's Eq. 2): binary cross-entropy between sigmoid(head(h_t)) and the step's label at
each labelled step tag t; labels may be soft (any value in [0, 1], e.g. Monte Carlo values).
Positions without a label carry `IGNORE` in `labels` and are neither read nor scored. The loss
is the mean over the labelled steps of the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Value in `labels` of a position that is not a labelled step tag.
IGNORE = -100.0


def new_head(hidden: int) -> nn.Sequential:
    """A freshly initialised head Linear(h, h) -> ReLU -> Linear(h, 1) (torch's default init)."""
    return nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class ValueHeadModel(nn.Module):
    """Backbone (a transformers base model returning last_hidden_state) + scalar value head.

    `forward(input_ids, attention_mask, labels)` returns {"loss", "logits"}: the head's logits at
    the labelled positions (flattened over the batch, in row-major order). Rows are right-padded
    by the collator; under the causal mask no real token sees the pads behind it, so the
    backbone runs without a padding mask (its fast causal path) and `attention_mask` is used
    only to count tokens.
    """

    main_input_name = "input_ids"

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.config = getattr(backbone, "config", None)
        # FSDP's auto-wrap policy wraps the classes a model names here: the backbone's decoder layers
        self._no_split_modules = getattr(backbone, "_no_split_modules", None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits at the labelled positions and, with labels, the mean BCE over them."""
        hidden = self.backbone(input_ids=input_ids, use_cache=False).last_hidden_state
        if labels is None:
            return {"logits": self.head(hidden).squeeze(-1)}
        mask = labels != IGNORE
        logits = self.head(hidden[mask]).squeeze(-1).float()
        target = labels[mask].float()
        if target.numel() == 0:  # a batch without a labelled step: zero loss that keeps the graph
            return {"loss": logits.sum() * 0.0 + hidden.sum() * 0.0, "logits": logits}
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
        return {"loss": loss, "logits": logits}

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict[str, Any] | None = None,
                                        **kwargs: Any) -> None:
        """Gradient (activation) checkpointing of the backbone's layers (what Trainer calls)."""
        inner = self.backbone
        if hasattr(inner, "activation_checkpointing_enable"):
            inner.activation_checkpointing_enable(activation_checkpointing_kwargs=activation_checkpointing_kwargs,
                                                  **kwargs)
        else:
            inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=activation_checkpointing_kwargs)
        enable = getattr(inner, "enable_input_require_grads", None)
        if enable is not None:  # frozen embeddings (LoRA) still need gradients through checkpointed layers
            enable()


def load_training_backbone(path: Path) -> tuple[nn.Module, nn.Module]:
    """The base model of a checkpoint folder (float32 master weights) and its head.

    A prmbench value-head checkpoint continues from its own head; any other model (a causal LM,
    a base model) gets a fresh head.
    """
    from safetensors.torch import load_file
    from transformers import AutoModel

    from prmbench.errors import ModelLoadError
    from prmbench.reward_models.hf_rm import _quiet_transformers, mlp_head
    from prmbench.reward_models.value_head_prm import HEAD_FILE, META_FILE

    with _quiet_transformers():
        try:
            backbone = AutoModel.from_pretrained(str(path), dtype=torch.float32)
        except Exception as e:
            raise ModelLoadError(f"train-prm: cannot load the backbone {str(path)!r}: {str(e).splitlines()[0]}") from None
    hidden = int(backbone.config.hidden_size)
    if (path / META_FILE).is_file() and (path / HEAD_FILE).is_file():
        head = mlp_head(load_file(str(path / HEAD_FILE)), HEAD_FILE + ":", "train-prm")
        head.train()
    else:
        head = new_head(hidden)
    return backbone, head
