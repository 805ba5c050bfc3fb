"""HFPolicy: conformance suite on a tiny random Qwen2 model plus transformers-specific checks."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from policy_conformance import PolicyConformance, assert_same
from prmbench.errors import ConfigError, ModelLoadError
from prmbench.policies.hf import HFPolicy
from prmbench.types import GenRequest, Message

MSGS_A = (Message("user", "What is 12 * 7 - 19? Think step by step."),)
MSGS_B = (Message("system", "You are a careful mathematician who explains every step."),
          Message("user", "Solve x^2 - 5x + 6 = 0 and give the sum of the roots in \\boxed{}."))
MSGS_C = (Message("user", "hi"),)


@pytest.fixture(scope="module")
def policy(tiny_model_dir: Path) -> HFPolicy:
    return HFPolicy(str(tiny_model_dir), batch_size=16)


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def chat_ids(tok, messages, prefix: str = "") -> list[int]:
    """Prompt ids computed straight from transformers (independent of the policy's code)."""
    conv = [{"role": m.role, "content": m.content} for m in messages]
    if not prefix:
        out = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=True, return_dict=True)
        return list(out["input_ids"])
    text = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False) + prefix
    return tok(text, add_special_tokens=False)["input_ids"]


class TestHFConformance(PolicyConformance):
    """The shared suite, sampling at temperature 1 from the tiny model."""

    @pytest.fixture(scope="class")
    def policy(self, tiny_model_dir: Path) -> HFPolicy:
        return HFPolicy(str(tiny_model_dir), batch_size=4)

    @pytest.fixture(scope="class")
    def problems(self):
        return [("a", MSGS_A), ("b", MSGS_B)]

    def expected_prompt_tokens(self, policy, messages, prefix):
        return len(chat_ids(policy.tokenizer, messages, prefix))


class TestHFConformanceNucleus(TestHFConformance):
    """The shared suite again with top-p sampling at a lower temperature."""

    temperature = 0.7
    top_p = 0.9


# -- sampling and batching --------------------------------------------------------------------
@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (1.0, 1.0), (0.8, 0.5)])
def test_token_ids_do_not_depend_on_batch_composition(tiny_model_dir, temperature, top_p):
    """Left padding, other prompts, prefill sharing and batch splits leave the sampled ids unchanged."""
    big = HFPolicy(str(tiny_model_dir), batch_size=16)
    small = HFPolicy(str(tiny_model_dir), batch_size=3)
    target = GenRequest(messages=MSGS_C, n=3, temperature=temperature, top_p=top_p, max_tokens=20, seed=77)
    others = [GenRequest(messages=MSGS_B, n=2, temperature=1.0, max_tokens=25, seed=1),
              GenRequest(messages=MSGS_A, prefix="Step 1:", n=1, temperature=0.0, max_tokens=5, seed=2)]
    alone = [d.token_ids for d in big.generate_detailed([target])[0]]
    singles = [big.generate_detailed([replace(target, n=1, seed=77 + i)])[0][0].token_ids for i in range(3)]
    for pol in (big, small):
        mixed = pol.generate_detailed([others[0], target, others[1]])[1]
        assert [d.token_ids for d in mixed] == alone
    assert singles == alone
    assert len(set(alone)) == (1 if temperature == 0 else 3)


def test_many_mixed_requests_same_ids_for_every_batch_size(tiny_model_dir):
    """12 requests of different prompts, prefixes, n, temperatures, top_p, stops and lengths:
    every sample's token ids are the same for batch sizes 1, 5 and 16, and equal the ids of
    the single-sample request with its own seed."""
    prompts = [MSGS_A, MSGS_B, MSGS_C, (Message("user", "Write def fib(n) in Python."),)]
    reqs = [GenRequest(messages=prompts[k % 4], prefix=["", "Step 1:", "x"][k % 3], n=1 + k % 3,
                       temperature=[0.0, 0.7, 1.0, 1.3][k % 4], top_p=[1.0, 0.9, 0.5][k % 3],
                       max_tokens=8 + 5 * (k % 4), stop=(("e",) if k % 5 == 0 else ()), seed=1000 * k)
            for k in range(12)]
    runs = []
    for bs in (1, 5, 16):
        pol = HFPolicy(str(tiny_model_dir), batch_size=bs)
        runs.append([[(d.token_ids, d.generation.text, d.generation.finish_reason) for d in ds]
                     for ds in pol.generate_detailed(reqs)])
    assert runs[0] == runs[1] == runs[2]
    pol = HFPolicy(str(tiny_model_dir), batch_size=16)
    singles = pol.generate_detailed([replace(r, n=1, seed=r.seed + i) for r in reqs for i in range(r.n)])
    assert [(d.token_ids, d.generation.text, d.generation.finish_reason) for [d] in singles] == \
        [x for ds in runs[0] for x in ds]
    assert {x[2] for ds in runs[0] for x in ds} >= {"length", "stop"}


def test_greedy_matches_transformers_generate(policy, tiny_model_dir, tok):
    """Our KV-cache loop with left padding reproduces model.generate's greedy tokens."""
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    reqs = [GenRequest(messages=MSGS_B, temperature=0.0, max_tokens=12),
            GenRequest(messages=MSGS_C, prefix="Step 1: Let", temperature=0.0, max_tokens=12)]
    ours = policy.generate_detailed(reqs)
    for req, [d] in zip(reqs, ours):
        ids = chat_ids(tok, req.messages, req.prefix)
        assert list(d.prompt_ids) == ids
        ref = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=12, eos_token_id=None, pad_token_id=0)
        assert list(d.token_ids) == ref[0, len(ids):].tolist()


def test_padded_prefill_logits_match_unpadded(policy):
    """What holds numerically: logits of a left-padded row equal its unpadded logits to ~1e-6."""
    import torch
    from transformers import DynamicCache

    model = policy.model
    short = policy.prompt_ids(MSGS_C)
    long = policy.prompt_ids(MSGS_B)
    width = len(long)
    ids = torch.zeros((2, width), dtype=torch.long)
    mask = torch.zeros((2, width), dtype=torch.long)
    ids[0], mask[0] = torch.tensor(long), 1
    ids[1, width - len(short):], mask[1, width - len(short):] = torch.tensor(short), 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        padded = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                       **{policy._cache_kwarg(model): DynamicCache(config=model.config)}).logits[1, -1]
        alone = model(input_ids=torch.tensor([short])).logits[0, -1]
    assert torch.allclose(padded, alone, atol=1e-5, rtol=0)


def test_generation_uses_no_deprecated_transformers_argument(policy):
    """`past_key_values` on forward is deprecated (removed in transformers 5.40): decoding must use
    the current cache argument, so a routine upgrade cannot break generation. Every deprecation
    warning transformers raises during generation is an error here."""
    import warnings

    reqs = [GenRequest(messages=MSGS_A, n=2, max_tokens=6, seed=11), GenRequest(messages=MSGS_B, max_tokens=4, seed=5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        out = policy.generate(reqs)
    for req, gens in zip(reqs, out):
        assert len(gens) == req.n
        assert all(g.completion_tokens == req.max_tokens or g.finish_reason != "length" for g in gens)
    assert_same(out[0], policy.generate([reqs[0]])[0])


def test_rows_finish_independently(policy):
    reqs = [GenRequest(messages=MSGS_A, max_tokens=2, seed=1), GenRequest(messages=MSGS_A, max_tokens=15, seed=2),
            GenRequest(messages=MSGS_B, max_tokens=7, seed=3)]
    out = policy.generate(reqs)
    assert [g[0].completion_tokens for g in out] == [2, 15, 7]
    assert all(g[0].finish_reason == "length" for g in out)
    for r, [g] in zip(reqs, out):
        assert_same([g], policy.generate([r])[0])


def test_seconds_are_the_batch_time_shared_by_rows(tiny_model_dir):
    pol = HFPolicy(str(tiny_model_dir), batch_size=4)
    gens = pol.generate([GenRequest(messages=MSGS_A, n=4, max_tokens=5)])[0]
    assert gens[0].seconds > 0
    assert len({g.seconds for g in gens}) == 1  # one batch: its wall time divided by its 4 rows


# -- stop strings and eos ---------------------------------------------------------------------
def test_stop_string_spanning_tokens(policy, tok):
    """A stop string made of the end of one token and the start of the next is found and cut."""
    req = GenRequest(messages=MSGS_A, temperature=1.0, max_tokens=30, seed=4)
    d = policy.generate_detailed([req])[0][0]
    ids = list(d.token_ids)
    pieces = [tok.decode([t]) for t in ids]
    k = next(k for k in range(3, len(ids) - 1)
             if pieces[k].isprintable() and pieces[k + 1].isprintable() and pieces[k] and pieces[k + 1])
    stop = pieces[k][-1] + pieces[k + 1][0]
    # the expected result, computed from the token ids with the tokenizer alone
    m = next(m for m in range(1, len(ids) + 1) if stop in tok.decode(ids[:m]))
    assert all(stop not in p for p in pieces[:m])  # no single token holds the stop string
    full = tok.decode(ids)
    s = policy.generate_detailed([replace(req, stop=("zzzz-never", stop))])[0][0]
    assert s.generation.finish_reason == "stop"
    assert s.generation.stop_string == stop
    assert s.generation.text == full[:full.find(stop)]
    assert s.generation.completion_tokens == m == len(s.token_ids)
    assert list(s.token_ids) == ids[:m]


def test_earliest_stop_string_wins(policy):
    base = policy.generate([GenRequest(messages=MSGS_B, temperature=1.0, max_tokens=30, seed=8)])[0][0]
    text = base.text
    early, late = text[4:6], text[-3:-1]
    assert early not in text[:4] and late not in text[:text.find(early)]
    g = policy.generate([GenRequest(messages=MSGS_B, temperature=1.0, max_tokens=30, seed=8, stop=(late, early))])[0][0]
    assert (g.stop_string, g.text) == (early, text[:4])


def test_eos_from_generation_config(tiny_model_dir, tmp_path, tok):
    """A token listed as eos in generation_config.json ends the sample: finish eos, counted, not in text."""
    pol = HFPolicy(str(tiny_model_dir))
    req = GenRequest(messages=MSGS_A, temperature=0.0, max_tokens=12)
    ids = list(pol.generate_detailed([req])[0][0].token_ids)
    k = 5
    while ids[k] in ids[:k]:
        k += 1
    model_dir = tmp_path / "eos_model"
    shutil.copytree(tiny_model_dir, model_dir)
    cfg = json.loads((model_dir / "generation_config.json").read_text())
    cfg["eos_token_id"] = [tok.eos_token_id, ids[k]]
    (model_dir / "generation_config.json").write_text(json.dumps(cfg))
    eos_pol = HFPolicy(str(model_dir))
    assert eos_pol.config()["fingerprint"] != pol.config()["fingerprint"]
    g = eos_pol.generate([req])[0][0]
    assert g.finish_reason == "eos"
    assert g.completion_tokens == k + 1
    assert g.text == tok.decode(ids[:k])


def test_tokenizer_eos_is_an_eos(policy, tok):
    assert tok.eos_token_id in policy._eos_ids


def test_length_finish_text_is_the_decoded_tokens(policy, tok):
    d = policy.generate_detailed([GenRequest(messages=MSGS_A, max_tokens=9, seed=3)])[0][0]
    assert d.generation.finish_reason == "length"
    assert d.generation.completion_tokens == len(d.token_ids) == 9
    assert d.generation.text == tok.decode(list(d.token_ids), skip_special_tokens=True)


# -- prompts ----------------------------------------------------------------------------------
def test_prompt_rendering_and_counts(policy, tok):
    rendered = tok.apply_chat_template([{"role": "user", "content": MSGS_A[0].content}],
                                       add_generation_prompt=True, tokenize=False)
    assert policy.render_prompt(MSGS_A, "Step 1:") == rendered + "Step 1:"
    g = policy.generate([GenRequest(messages=MSGS_A, prefix="Step 1:", max_tokens=3)])[0][0]
    assert g.prompt_tokens == len(tok(rendered + "Step 1:", add_special_tokens=False)["input_ids"])


def test_prefix_continues_a_partial_answer(policy, tok):
    """Greedy: continuing the first m generated tokens (as text) yields exactly the remaining tokens.

    Needs a prefix whose text re-tokenizes to the same ids (random byte tokens often do not), so
    it searches a few prompts and cut points.
    """
    found = None
    for msgs in (MSGS_B, MSGS_A, MSGS_C, (Message("user", "Compute 2^10 mod 7."),)):
        full = policy.generate_detailed([GenRequest(messages=msgs, temperature=0.0, max_tokens=16)])[0][0]
        ids = list(full.token_ids)
        for m in range(8, 2, -1):
            prefix = tok.decode(ids[:m])
            if policy.prompt_ids(msgs, prefix) == list(full.prompt_ids) + ids[:m]:
                found = msgs, full, ids, m, prefix
                break
        if found:
            break
    assert found, "no prefix of a greedy answer re-tokenizes to the same ids"
    msgs, full, ids, m, prefix = found
    cont = policy.generate_detailed([GenRequest(messages=msgs, prefix=prefix, temperature=0.0,
                                                max_tokens=16 - m)])[0][0]
    assert list(cont.token_ids) == ids[m:]
    assert prefix + cont.generation.text == full.generation.text
    assert cont.generation.prompt_tokens == full.generation.prompt_tokens + m


def test_plain_prompt_without_chat_template(tiny_model_dir, tok):
    pol = HFPolicy(str(tiny_model_dir), chat_template=False)
    assert pol.render_prompt(MSGS_B, "Step 1:") == MSGS_B[0].content + "\n\n" + MSGS_B[1].content + "Step 1:"
    g = pol.generate([GenRequest(messages=MSGS_B, prefix="Step 1:", max_tokens=2)])[0][0]
    assert g.prompt_tokens == len(tok(pol.render_prompt(MSGS_B, "Step 1:"))["input_ids"])
    assert pol.config()["chat_template"] is False
    assert pol.cache_id() != HFPolicy(str(tiny_model_dir)).cache_id()


# -- real Qwen2.5 tokenizer -------------------------------------------------------------------
def test_real_qwen_tokenizer(tiny_qwen_model_dir):
    pol = HFPolicy(str(tiny_qwen_model_dir))
    qtok = AutoTokenizer.from_pretrained(str(tiny_qwen_model_dir))
    assert {151645, 151643} <= set(pol._eos_ids)
    rendered = pol.render_prompt(MSGS_A, "Step 1:")
    assert rendered.startswith("<|im_start|>system\nYou are Qwen")
    assert rendered.endswith("<|im_start|>assistant\nStep 1:")
    gens = pol.generate([GenRequest(messages=MSGS_A, prefix="Step 1:", n=2, max_tokens=6, seed=0, stop=("ü",))])[0]
    assert gens[0].prompt_tokens == len(qtok(rendered, add_special_tokens=False)["input_ids"])
    assert all(g.completion_tokens <= 6 for g in gens)
    assert pol.num_parameters == sum(p.numel() for p in pol.model.parameters())
    # the seed contract holds over the full 151k vocabulary too, with and without top-p
    for top_p in (1.0, 0.9):
        req = GenRequest(messages=MSGS_B, n=3, max_tokens=6, seed=50, top_p=top_p)
        many = [d.token_ids for d in pol.generate_detailed([req, replace(req, messages=MSGS_C)])[0]]
        singles = [pol.generate_detailed([replace(req, n=1, seed=50 + i)])[0][0].token_ids for i in range(3)]
        assert many == singles and len(set(many)) == 3


# -- identity ---------------------------------------------------------------------------------
def test_num_parameters_and_identity(tiny_model_dir, tmp_path):
    pol = HFPolicy(str(tiny_model_dir))
    from_headers = pol.num_parameters  # weights not loaded yet: read from the safetensors header
    assert pol._model is None
    assert from_headers == sum(p.numel() for p in pol.model.parameters())
    cfg = pol.config()
    assert cfg["model"] == str(tiny_model_dir) and cfg["dtype"] == "float32" and cfg["revision"] is None
    assert cfg["fingerprint"]
    from prmbench.testing import build_tiny_model

    # a copy keeps the fingerprint; weights retrained in place (same shapes and sizes) change it
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert HFPolicy(str(copy)).config()["fingerprint"] == cfg["fingerprint"]
    retrained = build_tiny_model(tmp_path / "seed1", seed=1)
    shutil.copyfile(retrained / "model.safetensors", copy / "model.safetensors")
    assert HFPolicy(str(copy)).config()["fingerprint"] != cfg["fingerprint"]
    # batch size and device are not part of the identity (results do not depend on them)
    same = HFPolicy(str(tiny_model_dir), batch_size=2, device="cpu")
    pol.name = same.name = "hf:x"
    assert pol.cache_id() == same.cache_id()


# -- errors -----------------------------------------------------------------------------------
def test_missing_local_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="hf:/local/dir"):
        HFPolicy(str(tmp_path / "nope"))


def test_dir_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        HFPolicy(str(tmp_path / "empty"))


def test_hub_id_offline():
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as e:
        HFPolicy("Qwen/Qwen2.5-Math-1.5B-Instruct")
    assert "hf:/local/dir" in str(e.value)


def test_reward_model_is_not_a_policy(shared_models_dir, tmp_path):
    src = shared_models_dir / "Qwen__Qwen2.5-Math-PRM-7B" / "config.json"
    if not src.is_file():
        pytest.skip("shared PRM config not found")
    (tmp_path / "prm").mkdir()
    shutil.copyfile(src, tmp_path / "prm" / "config.json")
    with pytest.raises(ModelLoadError, match="not a causal language model"):
        HFPolicy(str(tmp_path / "prm"))


def test_missing_weights(tiny_model_dir, tmp_path):
    d = tmp_path / "noweights"
    shutil.copytree(tiny_model_dir, d)
    (d / "model.safetensors").unlink()
    pol = HFPolicy(str(d))
    with pytest.raises(ModelLoadError, match="weights"):
        pol.generate([GenRequest(messages=MSGS_C, max_tokens=1)])


@pytest.mark.parametrize("kwargs,match", [
    ({"dtype": "int3"}, "dtype"), ({"device": "tpu9"}, "device"), ({"batch_size": 0}, "batch_size")])
def test_bad_arguments(tiny_model_dir, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        HFPolicy(str(tiny_model_dir), **kwargs)


@pytest.mark.parametrize("kwargs", [{"top_p": 0.0}, {"max_tokens": 0}, {"temperature": -1.0}, {"stop": ("",)}])
def test_bad_requests(policy, kwargs):
    with pytest.raises(ConfigError):
        policy.generate([GenRequest(messages=MSGS_C, **kwargs)])


def test_registry_builds_hf_policy(tiny_model_dir):
    from prmbench.plugins import build_registry

    pol = build_registry().build("policy", f"hf:{tiny_model_dir}")
    assert isinstance(pol, HFPolicy) and pol.name == f"hf:{tiny_model_dir}"
