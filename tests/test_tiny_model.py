"""The tiny-model builder (prmbench.testing) and its command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from prmbench.policies.hf import HFPolicy
from prmbench.testing import build_tiny_model
from prmbench.testing.__main__ import main
from prmbench.types import GenRequest, Message

MSGS = (Message("user", "What is 2 + 3?"),)


def test_default_tiny_model_loads(tiny_model_dir: Path):
    config = AutoConfig.from_pretrained(str(tiny_model_dir))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert config.architectures == ["Qwen2ForCausalLM"] and config.model_type == "qwen2"
    assert (config.num_hidden_layers, config.hidden_size) == (2, 64)
    assert config.vocab_size == len(tok) == 512
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert (tiny_model_dir / "model.safetensors").is_file()
    assert tok.chat_template and tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    # special tokens are single tokens, ordinary text round-trips
    assert tok("<|im_start|>", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids("<|im_start|>")]
    text = "Step 1: 3x + 2 = 11, so x = 3.\n\ndef f(n):\n    return n ** 2 ü"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_trained_tokenizer_is_loaded_as_saved(tiny_model_dir: Path):
    """transformers loads qwen2 tokenizers as Qwen2Tokenizer; it must tokenize like tokenizer.json."""
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    text = "Let's compute 1024 mod 7:\n\n  x = [a, b]  # done\r\n"
    assert tok(text, add_special_tokens=False)["input_ids"] == raw.encode(text).ids


def test_seed_fixes_the_weights(tmp_path: Path):
    a = build_tiny_model(tmp_path / "a", seed=3, hidden=16, layers=1)
    b = build_tiny_model(tmp_path / "b", seed=3, hidden=16, layers=1)
    c = build_tiny_model(tmp_path / "c", seed=4, hidden=16, layers=1)
    wa, wb, wc = (load_file(str(d / "model.safetensors")) for d in (a, b, c))
    assert wa.keys() == wb.keys() == wc.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()


def test_llama_arch_generates(tmp_path: Path):
    d = build_tiny_model(tmp_path / "llama", arch="llama", hidden=32)
    assert AutoConfig.from_pretrained(str(d)).architectures == ["LlamaForCausalLM"]
    g = HFPolicy(str(d)).generate([GenRequest(messages=MSGS, n=2, max_tokens=5)])[0]
    assert [x.completion_tokens for x in g] == [5, 5]


def test_real_qwen_tokenizer_model(tiny_qwen_model_dir: Path, shared_models_dir: Path):
    config = AutoConfig.from_pretrained(str(tiny_qwen_model_dir))
    tok = AutoTokenizer.from_pretrained(str(tiny_qwen_model_dir))
    assert config.vocab_size == len(tok) == 151665
    assert config.tie_word_embeddings  # keeps the file at ~40 MB
    assert config.rope_parameters["rope_theta"] == 1e6  # taken from the real Qwen2.5 config
    gen = json.loads((tiny_qwen_model_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [151645, 151643]
    src = shared_models_dir / "Qwen__Qwen2.5-7B-Instruct"
    assert (tiny_qwen_model_dir / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()


def test_mistral_with_sentencepiece_tokenizer(tmp_path: Path, shared_models_dir: Path):
    src = shared_models_dir / "mistralai__Mistral-7B-v0.1"
    if not (src / "tokenizer.json").is_file():
        pytest.skip("shared Mistral tokenizer not found")
    d = build_tiny_model(tmp_path / "mistral", arch="mistral", tokenizer_dir=src, hidden=32)
    tok = AutoTokenizer.from_pretrained(str(d))
    assert AutoConfig.from_pretrained(str(d)).vocab_size == len(tok) == 32000
    assert tok.chat_template  # Mistral-7B-v0.1 ships none: a plain template was added
    pol = HFPolicy(str(d))
    assert pol.prompt_ids(MSGS)[0] == tok.bos_token_id  # the template path keeps the bos token
    g = pol.generate([GenRequest(messages=MSGS, max_tokens=4, seed=1)])[0][0]
    assert g.completion_tokens <= 4


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "gpt9"}, "unknown arch"), ({"hidden": 60, "heads": 8}, "divisible"),
    ({"layers": 0}, "layers"), ({"vocab_size": 100}, "vocab_size")])
def test_builder_rejects_bad_sizes(tmp_path: Path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_tiny_model(tmp_path / "x", **kwargs)


# -- command line -----------------------------------------------------------------------------
def test_cli_builds_a_model(tmp_path: Path, capsys):
    assert main(["tiny-model", str(tmp_path / "m"), "--hidden", "16", "--layers", "1", "--seed", "2"]) == 0
    assert f"hf:{tmp_path / 'm'}" in capsys.readouterr().out
    assert AutoConfig.from_pretrained(str(tmp_path / "m")).hidden_size == 16


@pytest.mark.parametrize("argv,match", [
    (["tiny-model", "{d}", "--tokenizer", "{d}/nope"], "no such folder"),
    (["tiny-model", "{d}", "--layers", "0"], "--layers must be >= 1"),
    (["tiny-model", "{d}", "--arch", "gpt9"], "invalid choice"),
    (["tiny-model", "{d}", "--hidden", "60", "--heads", "8"], "divisible"),
    (["tiny-model", "{full}"], "not empty"),
    ([], "required"),
])
def test_cli_bad_arguments_exit_2(tmp_path: Path, capsys, argv, match):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    argv = [a.format(d=tmp_path / "new", full=tmp_path / "full") for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_cli_help_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "prmbench.testing", "tiny-model", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert "examples:" in out.stdout and "--tokenizer" in out.stdout and "hf:/tmp/tiny" in out.stdout


def test_cli_math_pool(tmp_path: Path, shared_data_dir: Path, capsys):
    if not (shared_data_dir / "math500" / "test.jsonl").is_file():
        pytest.skip("shared MATH-500 data not found")
    out = tmp_path / "pool.jsonl"
    assert main(["math-pool", str(out), "--data-dir", str(shared_data_dir), "--problems", "3", "--samples", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["completions"]) == 2 for r in rows)
    assert f"replay:{out}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["math-pool", str(out), "--data-dir", str(tmp_path / "nowhere")])
    assert e.value.code == 2 and "math500" in capsys.readouterr().err
