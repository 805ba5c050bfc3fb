"""A character-level tokenizer for the lab's models, saved in the ordinary transformers format.

It is a byte-level BPE tokenizer with no merges: every byte (every character of the lab's ASCII
texts) is one token, plus `<|endoftext|>` (pad) and `<|im_end|>` (eos). It uses Qwen2's own
normalizer and pre-tokenizer because transformers loads the tokenizer of a qwen2 model folder as
Qwen2Tokenizer, which rebuilds them that way: identical either way, so the policy, the trainer
and the value-head PRM all tokenize alike. The chat template writes the user message and a
newline, so the policy's prompt is exactly what the trainer trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAD, EOS = "<|endoftext|>", "<|im_end|>"
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}\n{% endfor %}"


def build_tokenizer(out_dir: Path) -> Any:
    """Write the character tokenizer (with its chat template) to `out_dir`; return it loaded."""
    from tokenizers import pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from prmbench.testing.tiny_model import qwen2_bpe

    tok = qwen2_bpe()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + 2, special_tokens=[PAD, EOS],
                                  initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(["n = 42\n\nprint(n)"], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None,
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return AutoTokenizer.from_pretrained(str(out_dir))
