"""KV caches for the hf policy's decoding loop: preallocated layers and per-prompt prefill.

transformers' `DynamicCache` appends each decoded token with `torch.cat`, which copies the
whole cache of every layer at every step: O(rows x length) bytes per token, the largest cost of
a decode step once a batch holds many rows (64 rows of ~800 tokens: about half the step on a
CPU). `GrowingLayer` keeps each layer's keys and values in a buffer with spare room (doubling
when full) and writes a step's token in place; the model reads views of the filled part, so the
values it sees are exactly those `torch.cat` would have built.

`prefill` runs a batch's distinct prompts in groups of similar length (a prompt never pays for a
much longer batch mate: padded prefill costs the longest prompt squared per row) and assembles one
left-padded batch cache from the results. A `PromptStore` keeps recent prompts' prefills, so a
prompt asked for again by a later call (every search of a problem starts from its prompt) is
not run again.

Both need the cache layout of transformers >= 4.56 (`cache.layers` of `DynamicLayer`); with any
other layout (older versions, sliding-window or quantized layers) the stock cache and one padded
prefill are used instead, which compute the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from transformers import DynamicCache

try:  # transformers >= 4.56
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover - older transformers: stock caches only
    DynamicLayer = None  # type: ignore[assignment,misc]


if DynamicLayer is not None:

    class GrowingLayer(DynamicLayer):  # type: ignore[misc,valid-type]
        """A `DynamicLayer` whose keys and values live in preallocated buffers (see module docstring)."""

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            super().lazy_initialization(key_states, value_states)
            self._k: torch.Tensor | None = None
            self._v: torch.Tensor | None = None
            self._n = 0

        def _reserve(self, key_states: torch.Tensor, value_states: torch.Tensor, extra: int) -> None:
            have = 0 if self._k is None else self._k.shape[-2]
            if self._n + extra <= have:
                return
            cap = max(2 * have, self._n + extra + 64)
            b, h, _, dk = key_states.shape
            k = key_states.new_empty((b, h, cap, dk))  # only the filled part is ever read
            v = value_states.new_empty((b, h, cap, value_states.shape[-1]))
            if self._n:
                assert self._k is not None and self._v is not None
                k[..., : self._n, :] = self._k[..., : self._n, :]
                v[..., : self._n, :] = self._v[..., : self._n, :]
            self._k, self._v = k, v

        def _publish(self) -> None:
            assert self._k is not None and self._v is not None
            self.keys, self.values = self._k[..., : self._n, :], self._v[..., : self._n, :]

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            """Append `key_states`/`value_states` (same values as `DynamicLayer.update`, no full copy)."""
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            t = key_states.shape[-2]
            self._reserve(key_states, value_states, t)
            assert self._k is not None and self._v is not None
            self._k[..., self._n : self._n + t, :] = key_states
            self._v[..., self._n : self._n + t, :] = value_states
            self._n += t
            self._publish()
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            """Keep only rows `indices` (rows that finished leave the batch)."""
            if self._k is not None:
                assert self._v is not None
                k = self._k.new_empty((len(indices), *self._k.shape[1:]))
                v = self._v.new_empty((len(indices), *self._v.shape[1:]))
                k[..., : self._n, :] = self._k[indices, :, : self._n]  # the filled part only
                v[..., : self._n, :] = self._v[indices, :, : self._n]
                self._k, self._v = k, v
                self._publish()

        def crop(self, tokens_to_remove: int) -> None:
            """Drop the last `-tokens_to_remove` tokens (a negative count, as `DynamicLayer.crop` takes)."""
            if tokens_to_remove < 0 and self._k is not None:
                self._n = max(0, self._n + tokens_to_remove)
                self._publish()

        def batch_repeat_interleave(self, repeats: int) -> None:
            """Repeat every row `repeats` times."""
            if self._k is not None:
                self._k = self._k.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)  # type: ignore[union-attr]
                self._publish()


def new_cache(model: Any, grow: bool = True) -> Any:
    """An empty KV cache for `model`: `GrowingLayer`s when the layout allows it (see module docstring)."""
    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # older transformers: no config argument
        return DynamicCache()
    layers = getattr(cache, "layers", None)
    if grow and DynamicLayer is not None and layers and all(type(layer) is DynamicLayer for layer in layers):
        cache.layers = [GrowingLayer() for _ in layers]
    return cache


def supports_separate_prefill(cache: Any) -> bool:
    """Whether `prefill` can assemble per-prompt results into `cache` (plain full-attention layers)."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and DynamicLayer is not None and all(isinstance(layer, DynamicLayer)
                                                             and not getattr(layer, "is_sliding", False)
                                                             for layer in layers)


@dataclass(frozen=True)
class Prefilled:
    """A batch's prompts after prefill: the cache, last-position logits and the 2-D attention mask."""

    cache: Any
    logits: torch.Tensor
    mask: torch.Tensor


Forward = Callable[[Any, torch.Tensor, torch.Tensor, torch.Tensor, Any], torch.Tensor]


def padded_inputs(prompts: Sequence[Sequence[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask of `prompts`."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for j, p in enumerate(prompts):
        ids[j, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[j, width - len(p):] = 1
    return ids.to(device), mask.to(device)


PREFILL_PADDING = 1.25
"""A prefill group's padded size may be at most this multiple of its prompts' real tokens."""


def prefill_groups(lengths: Sequence[int], padding: float = PREFILL_PADDING) -> list[list[int]]:
    """Prompts (by index) grouped for prefill: longest first, a group grows while its padded
    size stays within `padding` x its real tokens (similar lengths share a forward pass)."""
    groups: list[list[int]] = []
    real = 0
    for j in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        if groups and lengths[groups[-1][0]] * (len(groups[-1]) + 1) <= padding * (real + lengths[j]):
            groups[-1].append(j)
            real += lengths[j]
        else:
            groups.append([j])
            real = lengths[j]
    return groups


@dataclass(frozen=True)
class _Stored:
    """One prompt's prefill: per layer (keys, values) of shape [1, heads, len, dim], and its last logits."""

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    logits: torch.Tensor


class PromptStore:
    """Recently prefilled prompts, kept for reuse by later batches (least recently used evicted
    beyond `max_tokens` prompt tokens in all). Step-wise search asks for the same prompts again
    and again (every strategy starts from the problem's prompt), so each is prefilled once."""

    def __init__(self, max_tokens: int):
        from collections import OrderedDict

        self.max_tokens = max_tokens
        self._items: "OrderedDict[tuple[int, ...], _Stored]" = OrderedDict()
        self._tokens = 0
        self.hits = 0
        self.misses = 0

    def get(self, prompt: tuple[int, ...]) -> _Stored | None:
        """The stored prefill of `prompt`, if any (marks it recently used)."""
        item = self._items.get(prompt)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(prompt)
        return item

    def put(self, prompt: tuple[int, ...], item: _Stored) -> None:
        """Keep `item` for `prompt`, evicting the least recently used prompts beyond the budget."""
        if len(prompt) > self.max_tokens or prompt in self._items:
            return
        self._items[prompt] = item
        self._tokens += len(prompt)
        while self._tokens > self.max_tokens:
            old, _ = self._items.popitem(last=False)
            self._tokens -= len(old)


def prefill(model: Any, forward: Forward, prompts: Sequence[Sequence[int]], pad: int, device: torch.device,
            store: PromptStore | None = None) -> Prefilled:
    """Prefill `prompts` into one left-padded batch cache.

    Prompts found in `store` are not run again; the others run in groups of similar length
    (`prefill_groups`), so no prompt pays for a much longer batch mate, and are added to it.
    """
    ids, mask = padded_inputs(prompts, pad, device)
    cache = new_cache(model)
    if not supports_separate_prefill(cache):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return Prefilled(cache, forward(model, ids, mask, positions, cache), mask)
    keyed = [tuple(p) for p in prompts]
    found: dict[int, _Stored] = {}
    for j, key in enumerate(keyed):
        item = store.get(key) if store is not None else None
        if item is not None:
            found[j] = item
    todo = [j for j in range(len(prompts)) if j not in found]
    for group in prefill_groups([len(prompts[j]) for j in todo]):
        members = [todo[g] for g in group]
        g_ids, g_mask = padded_inputs([prompts[j] for j in members], pad, device)
        alone = new_cache(model, grow=False)
        g_logits = forward(model, g_ids, g_mask, (g_mask.cumsum(-1) - 1).clamp(min=0), alone)
        for row, j in enumerate(members):
            n = len(prompts[j])
            found[j] = _Stored(tuple((layer.keys[row : row + 1, :, -n:], layer.values[row : row + 1, :, -n:])
                                     for layer in alone.layers), g_logits[row : row + 1])
            if store is not None:  # copies: a view would keep the whole group's cache alive
                store.put(keyed[j], _Stored(tuple((k.clone(), v.clone()) for k, v in found[j].layers),
                                            found[j].logits.clone()))
    width = ids.shape[1]
    for li in range(len(found[0].layers)):
        k0, v0 = found[0].layers[li]
        keys = k0.new_zeros((len(prompts), k0.shape[1], width, k0.shape[-1]))
        values = v0.new_zeros((len(prompts), v0.shape[1], width, v0.shape[-1]))
        for j in range(len(prompts)):
            k, v = found[j].layers[li]
            keys[j, :, width - k.shape[-2]:] = k[0]
            values[j, :, width - v.shape[-2]:] = v[0]
        cache.update(keys, values, li)
    return Prefilled(cache, torch.cat([found[j].logits for j in range(len(prompts))], dim=0), mask)
