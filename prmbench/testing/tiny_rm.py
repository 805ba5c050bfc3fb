"""Tiny random checkpoints of every reward-model family's real architecture, built offline.

`build_tiny_rm(DIR, family)` (also `python -m prmbench.testing tiny-rm --family F DIR`) writes a
folder that `--rm F:DIR` loads exactly like the public checkpoint: same architecture, same weight
names, same tokenizer files where prmbench's shared model folder (../shared/models or
$PRMBENCH_MODELS_DIR) has them. Weights are random, so scores are meaningless but exercise every
code path (separator ids, heads, chat templates, padding).

| family | layout (as the real checkpoint) | tokenizer |
| --- | --- | --- |
| qwen_prm | Qwen2 backbone `model.*` + `score.0`/`score.2` (Linear h->h, ReLU, Linear h->2), config of Qwen2.5-Math-PRM-7B (`Qwen2ForProcessRewardModel`) | real Qwen2.5 tokenizer with id 151651 renamed `<|quad_end|>` -> `<extra_0>` (**a test derivative**: the PRM's own tokenizer files are not available; in them `<extra_0>` is the single token 151651) |
| shepherd_prm | `MistralForCausalLM` | real Mistral-7B-v0.1 tokenizer.json with Math-Shepherd's tokenizer_config.json ("ки" 12902, "+" 648, "-" 387) |
| value_head_prm | Skywork layout: Qwen2 causal LM + `v_head.summary` Linear(h, 1) in the same weight file | real Qwen2.5 tokenizer (Skywork's PRM tokenizer is the Qwen2.5-Math one) |
| rlhflow_prm | `LlamaForCausalLM` | **stand-in**: the Llama-3.1 tokenizer is not available; a small BPE tokenizer trained on the spot with the Llama-3 special tokens and a Llama-3 style chat template |
| orm | Qwen2 backbone + `score.0`/`score.2` (Linear h->h, ReLU, Linear h->1), config of Qwen2.5-Math-RM-72B (`Qwen2ForRewardModel`) | real Qwen2.5 tokenizer (the RM's own files are not available; same BPE family) |
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from prmbench.testing.tiny_model import _default_models_dir, build_tiny_model, train_tokenizer

QWEN_TOKENIZER = "Qwen__Qwen2.5-7B-Instruct"
MISTRAL_TOKENIZER = "mistralai__Mistral-7B-v0.1"
SHEPHERD_TOKENIZER = "peiyi9979__math-shepherd-mistral-7b-prm"
QWEN_PRM_CONFIG = "Qwen__Qwen2.5-Math-PRM-7B"
QWEN_RM_CONFIG = "Qwen__Qwen2.5-Math-RM-72B"

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
#: Llama-3 style chat template (stand-in for the Llama-3.1 template of RLHFlow's PRMs, which also
#: writes a dated system header; the PRM protocol does not depend on it).
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
SIZE_KEYS = {"hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
             "vocab_size", "max_window_layers", "torch_dtype", "dtype", "transformers_version", "bos_token_id",
             "eos_token_id", "pad_token_id", "tie_word_embeddings", "layer_types", "max_position_embeddings",
             "use_sliding_window", "sliding_window"}


def _shared(name: str, models_dir: Path) -> Path:
    path = models_dir / name
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: the tiny checkpoint needs prmbench's shared model files "
                                f"(../shared/models or PRMBENCH_MODELS_DIR)")
    return path


def _qwen_prm_tokenizer(models_dir: Path, tmp: Path) -> Path:
    """Copy of the real Qwen2.5 tokenizer with added token 151651 renamed to `<extra_0>` (labelled derivative)."""
    src = _shared(QWEN_TOKENIZER, models_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "generation_config.json"):
        shutil.copyfile(src / name, tmp / name)
    tok = json.loads((tmp / "tokenizer.json").read_text())
    for entry in tok["added_tokens"]:
        if entry["id"] == 151651:
            entry["content"] = "<extra_0>"
    (tmp / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    cfg = json.loads((tmp / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"]["151651"]["content"] = "<extra_0>"
    (tmp / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2))
    return tmp


def _shepherd_tokenizer(models_dir: Path, tmp: Path) -> Path:
    mistral, shepherd = _shared(MISTRAL_TOKENIZER, models_dir), _shared(SHEPHERD_TOKENIZER, models_dir)
    for name in ("tokenizer.json", "special_tokens_map.json", "generation_config.json"):
        shutil.copyfile(mistral / name, tmp / name)
    shutil.copyfile(shepherd / "tokenizer_config.json", tmp / "tokenizer_config.json")
    return tmp


def _llama3_tokenizer(models_dir: Path, tmp: Path) -> Path:
    tok = train_tokenizer(512)
    tok.add_special_tokens({"additional_special_tokens": LLAMA3_SPECIALS})
    tok.bos_token, tok.eos_token = "<|begin_of_text|>", "<|eot_id|>"
    tok.chat_template = LLAMA3_TEMPLATE
    tok.save_pretrained(str(tmp))
    return tmp


def _qwen_tokenizer(models_dir: Path, tmp: Path) -> Path:
    return _shared(QWEN_TOKENIZER, models_dir)


def _adopt_config(out: Path, real: Path | None, architectures: list[str], **extra: Any) -> dict[str, Any]:
    """Give the tiny config the real checkpoint's non-size settings and class names."""
    cfg = json.loads((out / "config.json").read_text())
    if real is not None:
        data = json.loads((real / "config.json").read_text())
        cfg.update({k: v for k, v in data.items() if k not in SIZE_KEYS})
    cfg.update(architectures=architectures, **extra)
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return cfg


def _rewrite_weights(out: Path, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    from safetensors.torch import load_file, save_file

    weights = edit(load_file(str(out / "model.safetensors")))
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out / "model.safetensors"), metadata={"format": "pt"})


def _linear(n_in: int, n_out: int, gen: Any) -> tuple[Any, Any]:
    import torch

    bound = 1.0 / n_in ** 0.5
    w = (torch.rand((n_out, n_in), generator=gen) * 2 - 1) * bound
    b = (torch.rand((n_out,), generator=gen) * 2 - 1) * bound
    return w, b


def _mlp_head_weights(prefix: str, hidden: int, n_out: int, seed: int) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(seed + 1000)
    w0, b0 = _linear(hidden, hidden, gen)
    w2, b2 = _linear(hidden, n_out, gen)
    # Scale up the last layer so random scores spread over (0, 1) instead of sitting at 0.5.
    return {f"{prefix}0.weight": w0, f"{prefix}0.bias": b0, f"{prefix}2.weight": w2 * 8, f"{prefix}2.bias": b2}


def _backbone_with_head(out: Path, hidden: int, n_out: int, seed: int) -> None:
    """Turn a tiny causal LM into backbone `model.*` + MLP head `score.*` (the Qwen RM/PRM layout)."""
    def edit(w: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in w.items() if k.startswith("model.")}
        return {**kept, **_mlp_head_weights("score.", hidden, n_out, seed)}

    _rewrite_weights(out, edit)


FAMILIES = ("qwen_prm", "shepherd_prm", "value_head_prm", "rlhflow_prm", "orm")


def build_tiny_rm(out_dir: str | os.PathLike[str], family: str, seed: int = 0, layers: int = 2, hidden: int = 64,
                  models_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write a tiny random checkpoint of `family` (see the module docstring) to `out_dir`; return its path.

    Raises ValueError for an unknown family and FileNotFoundError when the shared model files a
    family needs are missing.
    """
    import torch

    if family not in FAMILIES:
        raise ValueError(f"unknown reward-model family {family!r}; choose one of {', '.join(FAMILIES)}")
    mdir = Path(models_dir) if models_dir is not None else _default_models_dir()
    out = Path(out_dir)
    tokenizers = {"qwen_prm": _qwen_prm_tokenizer, "shepherd_prm": _shepherd_tokenizer,
                  "value_head_prm": _qwen_tokenizer, "rlhflow_prm": _llama3_tokenizer, "orm": _qwen_tokenizer}
    arch = {"shepherd_prm": "mistral", "rlhflow_prm": "llama"}.get(family, "qwen2")
    with tempfile.TemporaryDirectory(prefix="prmbench-tok-") as tmp:
        tok_dir = tokenizers[family](mdir, Path(tmp))
        build_tiny_model(out, tokenizer_dir=tok_dir, arch=arch, seed=seed, layers=layers, hidden=hidden,
                         tie_embeddings=False if family in ("shepherd_prm", "rlhflow_prm") else None)
    note = {"qwen_prm": "real Qwen2.5 tokenizer, id 151651 renamed to <extra_0> (test derivative of the PRM tokenizer)",
            "shepherd_prm": "real Mistral-7B-v0.1 tokenizer.json + Math-Shepherd tokenizer_config.json",
            "value_head_prm": "real Qwen2.5 tokenizer",
            "rlhflow_prm": "stand-in: BPE trained on prmbench's corpus + Llama-3 special tokens and chat template",
            "orm": "real Qwen2.5 tokenizer (stand-in for the RM's own, same BPE family)"}[family]
    if family == "qwen_prm":
        _backbone_with_head(out, hidden, 2, seed)
        _adopt_config(out, _shared(QWEN_PRM_CONFIG, mdir), ["Qwen2ForProcessRewardModel"], tie_word_embeddings=False)
    elif family == "orm":
        _backbone_with_head(out, hidden, 1, seed)
        _adopt_config(out, _shared(QWEN_RM_CONFIG, mdir), ["Qwen2ForRewardModel"], tie_word_embeddings=False,
                      num_labels=1)
    elif family == "value_head_prm":
        gen = torch.Generator().manual_seed(seed + 1000)
        w, b = _linear(hidden, 1, gen)
        _rewrite_weights(out, lambda ws: {**ws, "v_head.summary.weight": w * 8, "v_head.summary.bias": b})
    meta_path = out / "prmbench_tiny_model.json"
    meta = json.loads(meta_path.read_text())
    meta.update(builder="prmbench.testing.build_tiny_rm", family=family, tokenizer=note)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return out
