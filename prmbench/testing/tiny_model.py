"""Build a tiny, randomly initialised causal LM of a real architecture, offline, in seconds.

The model is useless as a policy (its weights are random) but exercises exactly the code paths
of a real checkpoint: `AutoModelForCausalLM.from_pretrained`, a KV cache, a chat template,
special tokens and safetensors weights. The output folder loads with `--policy hf:DIR`.

Two tokenizer choices:

- `tokenizer_dir=None` (default): a small byte-level BPE tokenizer is trained on a built-in text
  corpus (math steps, Python code and prose), with `<|endoftext|>` (pad), `<|im_start|>` and
  `<|im_end|>` (eos) special tokens and a ChatML chat template. Needs no files at all.
- `tokenizer_dir=DIR`: the tokenizer files of DIR (e.g. a real Qwen2.5 tokenizer) are copied
  unchanged; a ChatML template is added only when DIR has none. The eos ids of DIR's
  generation_config.json are kept.

The architecture's base config comes from `config.json` of the tokenizer folder when its
`model_type` matches, else from prmbench's shared model folder (`../shared/models`, or
$PRMBENCH_MODELS_DIR) when present, else from transformers' defaults; it is then shrunk to the
requested size. The model's vocabulary size always equals `len(tokenizer)`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

#: Architectures the builder supports, with the shared folder whose config.json serves as base.
ARCHS: dict[str, str] = {
    "qwen2": "Qwen__Qwen2.5-7B-Instruct",
    "llama": "",
    "mistral": "mistralai__Mistral-7B-v0.1",
}

CHATML_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: A template for copied tokenizers that lack one and have no ChatML tokens: plain role headers.
#: Both templates start with the bos token when the tokenizer has one (as Llama/Mistral templates do).
PLAIN_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)

#: Qwen2's pre-tokenization pattern (GPT-4 style: words, single digits, punctuation runs, newlines).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja", "chat_template.json",
)

# A small built-in corpus so the BPE tokenizer learns useful merges (digits, "Step", "\n\n",
# Python keywords). Repeated with variations at training time.
_CORPUS = r"""
Step 1: Let x be the number of apples. Then 3x + 2 = 11, so 3x = 9 and x = 3.

Step 2: The area of a circle with radius r is \pi r^2. With r = 4 the area is 16\pi.

Step 3: We compute 12 * 7 = 84 and 84 - 19 = 65. Therefore the answer is \boxed{65}.

To solve the equation x^2 - 5x + 6 = 0, factor it as (x - 2)(x - 3) = 0, so x = 2 or x = 3.
The sum of the roots is 5 and their product is 6. The final answer is \boxed{5}.

First, note that 2^{10} = 1024. Next, 1024 mod 7 = 2 because 7 * 146 = 1022.
Hence the remainder is 2. Let's verify: 1022 + 2 = 1024. The answer is $\boxed{2}$.

The probability of rolling a sum of 7 with two fair dice is 6/36 = 1/6.
The expected value of a single die is (1 + 2 + 3 + 4 + 5 + 6) / 6 = 3.5.

def add(a: int, b: int) -> int:
    return a + b


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    for i in range(2, int(n ** 0.5) + 1):
        if n % i == 0:
            return False
    return True


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

The quick brown fox jumps over the lazy dog. A process reward model scores every step of a
solution, while an outcome reward model scores only the final answer. Best-of-N sampling draws
N solutions and keeps the one with the highest score; beam search expands the best partial
solutions step by step. Majority voting picks the most common final answer.
"""


def _default_models_dir() -> Path:
    env = os.environ.get("PRMBENCH_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "models"


def _corpus_lines() -> list[str]:
    """The training corpus: paragraphs of the built-in text plus number and arithmetic lines."""
    paragraphs = [p.strip("\n") for p in _CORPUS.split("\n\n") if p.strip()]
    extra = [f"{a} + {b} = {a + b}. {a} * {b} = {a * b}." for a in range(0, 40, 3) for b in range(1, 30, 7)]
    return paragraphs * 4 + extra


def qwen2_bpe() -> Any:
    """An empty byte-level BPE `tokenizers.Tokenizer` with Qwen2's normalizer, pre-tokenizer and
    decoder (transformers loads the tokenizer of a qwen2 model folder as Qwen2Tokenizer, which
    rebuilds them this way: identical either way), ready to be trained."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(vocab_size: int = 512) -> Any:
    """Train a byte-level BPE tokenizer on the built-in corpus; returns a transformers tokenizer.

    The tokenizer has `<|endoftext|>` as pad token, `<|im_end|>` as eos token, no bos token and
    a ChatML chat template. `vocab_size` counts the special tokens.
    """
    from tokenizers import pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = qwen2_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_lines(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _copy_tokenizer(src: Path, out: Path) -> Any:
    """Copy the tokenizer files of `src` into `out`; add a chat template when it has none."""
    from transformers import AutoTokenizer

    if not src.is_dir():
        raise FileNotFoundError(f"tokenizer folder {src} does not exist")
    copied = 0
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)  # copyfile: read-only sources give writable copies
            copied += 1
    if not copied:
        raise FileNotFoundError(f"no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...) in {src}")
    tok = AutoTokenizer.from_pretrained(str(out))
    if not getattr(tok, "chat_template", None):
        vocab = tok.get_vocab()
        template = CHATML_TEMPLATE if all(t in vocab for t in SPECIAL_TOKENS[1:]) else PLAIN_TEMPLATE
        (out / "chat_template.jinja").write_text(template)
        tok = AutoTokenizer.from_pretrained(str(out))
    return tok


def _base_config(arch: str, tokenizer_dir: Path | None) -> dict[str, Any]:
    """The full-size config to shrink, as a dict (see module docstring for the lookup order)."""
    candidates: list[Path] = []
    if tokenizer_dir is not None:
        candidates.append(tokenizer_dir / "config.json")
    if ARCHS[arch]:
        candidates.append(_default_models_dir() / ARCHS[arch] / "config.json")
    for path in candidates:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("model_type") == arch and any(a.endswith("ForCausalLM") for a in data.get("architectures", [])):
            return data
    return {}


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str] | None = None,
    arch: str = "qwen2",
    seed: int = 0,
    layers: int = 2,
    hidden: int = 64,
    heads: int | None = None,
    kv_heads: int | None = None,
    intermediate: int | None = None,
    vocab_size: int = 512,
    max_position_embeddings: int = 4096,
    tie_embeddings: bool | None = None,
) -> Path:
    """Write a tiny random causal LM with tokenizer and chat template to `out_dir`; return its path.

    `arch` is one of ARCHS (qwen2, llama, mistral). `seed` fixes the weights (same arguments, same
    files). `heads` defaults to hidden // 16 (at least 1), `kv_heads` to half of that when even,
    `intermediate` to 2 * hidden. `vocab_size` sizes the trained tokenizer only; with
    `tokenizer_dir` the vocabulary is that tokenizer's. Raises ValueError for impossible sizes and
    FileNotFoundError for a missing tokenizer folder.

    `tie_embeddings` defaults to True only for vocabularies over 65536 tokens (keeps a tiny model
    with the Qwen vocabulary at ~40 MB). Untied is the better test model: with tied random
    embeddings the logits favour the last input token, so greedy decoding just repeats it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if layers < 1 or hidden < 8:
        raise ValueError(f"need layers >= 1 and hidden >= 8 (got layers={layers}, hidden={hidden})")
    heads = heads or max(1, hidden // 16)
    kv_heads = kv_heads or (heads // 2 if heads % 2 == 0 else heads)
    if hidden % heads or (hidden // heads) % 2:
        raise ValueError(f"hidden={hidden} must be divisible by heads={heads} into an even head size")
    if heads % kv_heads:
        raise ValueError(f"heads={heads} must be a multiple of kv_heads={kv_heads}")
    if vocab_size < 300:
        raise ValueError(f"vocab_size={vocab_size} is too small for a byte-level tokenizer (need >= 300)")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok_src = Path(tokenizer_dir) if tokenizer_dir is not None else None
    if tok_src is not None:
        tokenizer = _copy_tokenizer(tok_src, out)
    else:
        tokenizer = train_tokenizer(vocab_size)
        tokenizer.save_pretrained(str(out))

    n_vocab = len(tokenizer)
    base = _base_config(arch, tok_src)
    eos_ids = _eos_ids(tokenizer, tok_src, n_vocab)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    bos_id = tokenizer.bos_token_id
    if bos_id is None and isinstance(base.get("bos_token_id"), int) and base["bos_token_id"] < n_vocab:
        bos_id = base["bos_token_id"]

    drop = {"architectures", "transformers_version", "torch_dtype", "dtype", "layer_types", "head_dim",
            "max_window_layers", "auto_map", "_name_or_path", "model_type"}
    settings = {k: v for k, v in base.items() if k not in drop}
    settings.update(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate or 2 * hidden,
        vocab_size=n_vocab,
        max_position_embeddings=min(max_position_embeddings, int(base.get("max_position_embeddings", 1 << 30))),
        tie_word_embeddings=tie_embeddings if tie_embeddings is not None else n_vocab > 65536,
        bos_token_id=bos_id,
        eos_token_id=eos_ids[0],
        pad_token_id=pad_id,
        use_cache=True,
    )
    if arch == "mistral":
        settings["sliding_window"] = None  # a window larger than the context is a no-op; keep it simple
    config = AutoConfig.for_model(arch, **settings)
    config.architectures = [_causal_class(arch)]

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=eos_ids if len(eos_ids) > 1 else eos_ids[0], pad_token_id=pad_id,
    )
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(str(out))
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    (out / "prmbench_tiny_model.json").write_text(json.dumps({
        "builder": "prmbench.testing.build_tiny_model", "arch": arch, "seed": seed, "layers": layers,
        "hidden": hidden, "heads": heads, "kv_heads": kv_heads, "vocab_size": n_vocab,
        "tokenizer": str(tok_src) if tok_src is not None else "trained byte-level BPE (built-in corpus)",
    }, indent=2) + "\n")
    return out


def _causal_class(arch: str) -> str:
    return {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}[arch]


def _eos_ids(tokenizer: Any, tok_src: Path | None, n_vocab: int) -> list[int]:
    """Eos ids: the tokenizer's eos first, then those of the source generation_config.json."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if tok_src is not None and (tok_src / "generation_config.json").is_file():
        try:
            eos = json.loads((tok_src / "generation_config.json").read_text()).get("eos_token_id")
        except ValueError:
            eos = None
        for i in eos if isinstance(eos, list) else [eos]:
            if isinstance(i, int) and 0 <= i < n_vocab and i not in ids:
                ids.append(i)
    if not ids:
        raise ValueError("the tokenizer has no eos token; pass a tokenizer folder that defines one")
    return ids
