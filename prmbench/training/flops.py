"""Training compute: parameter counts, 6 x N x D, and the pre-training tokens of known model families.

- **RM training FLOPs** = 6 x N x D, N = parameters of the trained model (backbone + value head,
  embeddings included; with LoRA still every parameter, since the forward and backward passes
  run through all of them), D = non-padding tokens processed in training (`train_tokens`).
- **Pre-training FLOPs** of the backbone = 6 x N_backbone x pre-training tokens. The tokens come
  from `--pretrain-tokens` or from `PRETRAIN_TOKENS` below, matched against the backbone's id,
  folder name and config `_name_or_path` (the first matching pattern wins, most specific first).
  Unknown families record `null` and say so; plots on the FLOPs axis then need --pretrain-tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

#: (pattern, pre-training tokens, source). Figures are the tokens each family's report states.
PRETRAIN_TOKENS: tuple[tuple[str, float, str], ...] = (
    (r"qwen2\.5-math", 18.0e12 + 1.0e12, "Qwen2.5 base (18T) + Qwen Math Corpus v2 (1T), Qwen2.5-Math report"),
    (r"qwen2\.5-coder", 18.0e12 + 5.5e12, "Qwen2.5 base (18T) + 5.5T code tokens, Qwen2.5-Coder report"),
    (r"qwen2\.5", 18.0e12, "Qwen2.5 technical report: up to 18T tokens"),
    (r"qwen2-0\.5b", 12.0e12, "Qwen2 technical report: the 0.5B model saw 12T tokens"),
    (r"qwen2(?![.\d])", 7.0e12, "Qwen2 technical report: over 7T tokens"),
    (r"llama-3\.2-(1|3)b", 9.0e12, "Llama 3.2 model card: up to 9T tokens"),
    (r"llama-3", 15.0e12, "Llama 3 / 3.1 model cards: over 15T tokens"),
    (r"llama-2", 2.0e12, "Llama 2 paper: 2T tokens"),
    (r"gemma-2-2b", 2.0e12, "Gemma 2 report: 2T tokens"),
    (r"gemma-2-9b", 8.0e12, "Gemma 2 report: 8T tokens"),
    (r"gemma-2-27b", 13.0e12, "Gemma 2 report: 13T tokens"),
)


@dataclass(frozen=True)
class PretrainInfo:
    """The backbone's pre-training compute as recorded: tokens, FLOPs and where the tokens came from."""

    tokens: float | None
    flops: float | None
    source: str

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the training record."""
        return {"pretrain_tokens": self.tokens, "pretrain_flops": self.flops, "pretrain_source": self.source}


def training_flops(num_parameters: int, tokens: int | float) -> float:
    """6 x parameters x tokens (forward 2N + backward 4N per token)."""
    return 6.0 * float(num_parameters) * float(tokens)


def lookup_pretrain_tokens(names: Iterable[str]) -> tuple[float, str] | None:
    """(tokens, source) of the first table pattern found in any of `names` (case-insensitive), else None."""
    lowered = [n.lower().replace("__", "/") for n in names if n]
    for pattern, tokens, source in PRETRAIN_TOKENS:
        if any(re.search(pattern, n) for n in lowered):
            return tokens, source
    return None


def pretrain_info(backbone_parameters: int, names: Iterable[str], pretrain_tokens: float | None) -> PretrainInfo:
    """Pre-training compute from --pretrain-tokens (wins) or the table; unknown -> nulls with the reason."""
    if pretrain_tokens is not None:
        return PretrainInfo(float(pretrain_tokens), training_flops(backbone_parameters, pretrain_tokens),
                            "--pretrain-tokens")
    found = lookup_pretrain_tokens(list(names))
    if found is None:
        return PretrainInfo(None, None, "unknown family: pass --pretrain-tokens (0 for a randomly initialised backbone)")
    tokens, source = found
    return PretrainInfo(tokens, training_flops(backbone_parameters, tokens), f"table: {source}")
