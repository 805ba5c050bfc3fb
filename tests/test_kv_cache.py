"""The hf policy's KV caches (prmbench.policies.kv_cache): growing layers, grouped prefill and
the prompt store compute what transformers' own cache and one padded prefill compute."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache
from transformers.cache_utils import DynamicLayer

from prmbench.policies.hf import HFPolicy
from prmbench.policies.kv_cache import GrowingLayer, PromptStore, new_cache, prefill, prefill_groups
from prmbench.types import GenRequest, Message


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()


def _forward(model, ids, mask, positions, cache):
    return model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True).logits[:, -1].float()


def test_growing_layer_holds_exactly_what_concatenation_holds():
    torch.manual_seed(0)
    grow, stock = GrowingLayer(), DynamicLayer()
    rows = 3
    for i, t in enumerate((5, 1, 1, 70, 1)):  # 70 forces a regrowth
        k, v = torch.randn(rows, 2, t, 8), torch.randn(rows, 2, t, 8)
        gk, gv = grow.update(k, v)
        sk, sv = stock.update(k, v)
        assert torch.equal(gk, sk) and torch.equal(gv, sv)
        if i == 2:  # rows leave the batch
            index = torch.tensor([2, 0])
            grow.batch_select_indices(index)
            stock.batch_select_indices(index)
            rows = 2
    assert grow.get_seq_length() == stock.get_seq_length() == 78


def test_new_cache_uses_growing_layers_for_plain_attention(model):
    cache = new_cache(model)
    assert cache.layers and all(isinstance(layer, GrowingLayer) for layer in cache.layers)
    assert all(type(layer) is DynamicLayer for layer in new_cache(model, grow=False).layers)


def test_prefill_groups_keep_padding_bounded():
    lengths = [772, 200, 494, 488, 216, 482, 220]
    groups = prefill_groups(lengths)
    assert sorted(j for g in groups for j in g) == list(range(len(lengths)))
    group_of = {j: n for n, g in enumerate(groups) for j in g}
    assert group_of[0] != group_of[1]  # the longest prompt is not padded onto the shortest
    for g in groups:
        assert lengths[g[0]] * len(g) <= 1.25 * sum(lengths[j] for j in g)
    assert prefill_groups([300] * 5) == [[0, 1, 2, 3, 4]]


def test_grouped_prefill_and_store_match_one_padded_prefill(model):
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 500, (n,), generator=gen).tolist() for n in (40, 9, 38, 12, 40)]
    ids = torch.zeros((len(prompts), 40), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for j, p in enumerate(prompts):
        ids[j, 40 - len(p):], mask[j, 40 - len(p):] = torch.tensor(p), 1
    with torch.inference_mode():
        ref_cache = DynamicCache(config=model.config)
        ref = _forward(model, ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), ref_cache)
        store = PromptStore(1000)
        first = prefill(model, _forward, prompts, 0, torch.device("cpu"), store)
        assert (store.hits, store.misses) == (0, 5)
        again = prefill(model, _forward, prompts[::-1], 0, torch.device("cpu"), store)
        assert (store.hits, store.misses) == (5, 5)  # nothing ran the second time
    assert torch.allclose(first.logits, ref, atol=1e-5, rtol=0)
    assert torch.equal(again.logits, first.logits.flip(0))
    assert torch.equal(first.mask, mask)
    for li, layer in enumerate(first.cache.layers):
        real = mask.bool()[:, None, :, None].expand_as(ref_cache.layers[li].keys)
        assert torch.allclose(layer.keys[real], ref_cache.layers[li].keys[real], atol=1e-5, rtol=0)


def test_store_evicts_least_recently_used_beyond_its_budget():
    store = PromptStore(10)
    item = object()
    store.put((1, 2, 3, 4), item)  # type: ignore[arg-type]
    store.put((5, 6, 7, 8), item)  # type: ignore[arg-type]
    assert store.get((1, 2, 3, 4)) is item
    store.put((9, 9, 9), item)  # type: ignore[arg-type]  # 11 tokens: (5, 6, 7, 8) was used longest ago
    assert store.get((5, 6, 7, 8)) is None and store.get((1, 2, 3, 4)) is item
    store.put(tuple(range(11)), item)  # type: ignore[arg-type]  # larger than the budget: not kept
    assert store.get(tuple(range(11))) is None


def test_policy_results_do_not_depend_on_the_store_or_batching(tiny_model_dir: Path):
    """Same tokens with the store on and off, prompts alone and mixed into one batch."""
    msgs = [(Message("user", "What is 12 * 7 - 19? Think step by step."),),
            (Message("user", "hi"),),
            (Message("system", "Be brief."), Message("user", "Solve x^2 - 5x + 6 = 0 and give the sum of the roots."))]
    reqs = [GenRequest(messages=m, n=3, max_tokens=12, temperature=1.0, seed=7) for m in msgs]
    cached = HFPolicy(str(tiny_model_dir))
    plain = HFPolicy(str(tiny_model_dir), prompt_cache_tokens=0)
    mixed = [[g.text for g in gs] for gs in cached.generate(reqs)]
    assert [[g.text for g in gs] for gs in cached.generate(reqs)] == mixed  # served from the store
    assert cached.prompt_store is not None and cached.prompt_store.hits == 3
    assert [[g.text for g in cached.generate([r])[0]] for r in reqs] == mixed
    assert [[g.text for g in gs] for gs in plain.generate(reqs)] == mixed
    assert plain.prompt_store is None
