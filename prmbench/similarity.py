"""Gradient-based pattern similarity of two response sets (the seed paper's Table 2).

Definition (Wang et al. 2025, "Exploring activation patterns of parameters in language models",
as the seed paper uses it), for a reference causal LM with L transformer layers:

- F(s) = the largest logit at the last position of text s;
- A(s) = |W * dF/dW| (elementwise) for every 2-D weight matrix W of the transformer layers
  `layers` (default: index L//2 to L-1; no embeddings, no LM head); A_l(s) is the concatenation
  over the 2-D weights of layer l;
- similarity(s1, s2) = sum over the layers l of cos(A_l(s1), A_l(s2));
- S(set1, set2) = the mean of similarity(s1, s2) over all cross pairs s1 in set1, s2 in set2.

`per_layer[l]` is the mean over the cross pairs of cos(A_l(s1), A_l(s2)), so S = sum of per_layer.

How it is computed (exactly, not approximately):

- **Mean over pairs without pairs.** mean_ij cos(a_i, b_j) = (sum_i a_i/|a_i|) . (sum_j b_j/|b_j|)
  / (n m): one running sum of set 1's unit vectors per layer (the size of those layers' weights,
  float32), then one dot product per text of set 2. Memory does not grow with the set sizes.
- **Batched per-text gradients.** Texts are right-padded into batches (no padding mask needed:
  under the causal mask no real token sees the pads behind it). For a linear layer y = x W^T the
  gradient of text b's F is sum_t g_bt^T x_bt with g = dF_b/dy (rows of a batch are independent),
  so one backward pass of sum_b F_b gives every text's own dF/dW through forward hooks; per-text
  matrices are formed one weight and one text at a time.
- **Memory-bounded.** Beyond the model: set 1's running sum (one float32 copy of the selected
  layers' 2-D weights), one weight-sized matrix, and the captured inputs / output gradients of
  one group of layers: when a batch's would exceed `memory_mb` (default 2048), the layers are
  split into groups, each with its own forward + backward pass. A model whose layers hold 2-D
  weights outside nn.Linear falls back to one text per backward pass (the weights' own gradients).
- Only the last position goes through the LM head (never full-vocabulary logits of every token).
- Texts longer than `max_length` tokens keep their first `max_length` tokens (counted in
  `truncated`); texts are tokenized with the tokenizer's special tokens (e.g. a bos).

Inputs: JSONL rows with `text`, or `RUN_DIR:CELL_ID` for the solutions a run's cell chose
(`chosen_text` of each record: the responses that cell's reward model selected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from prmbench.errors import ConfigError, DataError, ModelLoadError

DEFINITION = ("S = mean over cross pairs of sum over layers of cos(A_l(s1), A_l(s2)); A = |W * dF/dW| over the "
              "2-D weights of each transformer layer; F = largest logit at the last position")


@dataclass(frozen=True)
class SimilarityResult:
    """S, its per-layer terms and what it was computed on."""

    S: float
    per_layer: dict[int, float]
    layers: tuple[int, ...]
    n_a: int
    n_b: int
    truncated: int = 0
    zero_vectors: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The output file's content."""
        return {"S": self.S, "per_layer": {str(k): v for k, v in self.per_layer.items()}, "layers": list(self.layers),
                "n_a": self.n_a, "n_b": self.n_b, "pairs": self.n_a * self.n_b, "truncated": self.truncated,
                "zero_vectors": self.zero_vectors, "definition": DEFINITION, **self.meta}


# -- inputs -----------------------------------------------------------------------------------
def load_texts(spec: str) -> list[str]:
    """Texts of a JSONL file (rows with `text`) or of a run cell (`RUN_DIR:CELL_ID`, the chosen solutions)."""
    path = Path(spec)
    if path.is_file():
        from prmbench.jsonl import read_jsonl_rows

        texts = []
        for no, row in read_jsonl_rows(path, what="text file"):
            if not isinstance(row.get("text"), str):
                raise DataError(f"{path}:{no}: a row needs the response as a string in `text`")
            texts.append(row["text"])
        if not texts:
            raise DataError(f"{path} has no rows")
        return texts
    run, sep, cell = spec.rpartition(":")
    if not sep or not Path(run).is_dir():
        raise ConfigError(f"{spec!r} is neither a JSONL file of {{\"text\": ...}} rows nor RUN_DIR:CELL_ID "
                          f"(a `prmbench run` output folder and one of its cells)")
    from prmbench.results import load_run

    result = load_run(run)
    match = [c for c in result.cells if c.id == cell]
    if not match:
        raise ConfigError(f"{run} has no cell {cell!r}; its cells: {', '.join(c.id for c in result.cells)}")
    texts = [r["chosen_text"] for r in match[0].records if isinstance(r.get("chosen_text"), str)]
    if not texts:
        raise DataError(f"cell {cell} of {run} has no chosen solutions yet")
    return texts


def parse_layers(text: str | None, n_layers: int) -> tuple[int, ...]:
    """Layer indices: None -> L//2 .. L-1; 'A:B' -> A .. B-1; 'i,j,k' -> those (negatives count from the end)."""
    if text is None or str(text).strip() == "":
        return tuple(range(n_layers // 2, n_layers))
    text = str(text).strip()
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            lo = int(a) if a.strip() else 0
            hi = int(b) if b.strip() else n_layers
            idx = list(range(lo % n_layers if lo < 0 else lo, hi % n_layers if hi < 0 else hi))
        else:
            idx = [int(x) % n_layers if int(x) < 0 else int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--layers {text!r}: use A:B (a range) or i,j,k (indices)") from None
    if not idx or any(not 0 <= i < n_layers for i in idx):
        raise ConfigError(f"--layers {text!r}: the model has layers 0..{n_layers - 1}")
    return tuple(sorted(set(idx)))


# -- the model --------------------------------------------------------------------------------
def decoder_layers(model: Any) -> Any:
    """The transformer layers of a causal LM (the ModuleList of num_hidden_layers blocks)."""
    import torch

    n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    for _, module in model.base_model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n and n > 0:
            return module
    raise ModelLoadError(f"cannot find the {n} transformer layers of {type(model).__name__}")


def load_reference_model(spec: str, device: str = "auto", dtype: str = "float32") -> tuple[Any, Any]:
    """(causal LM in eval mode, tokenizer) of a Hub id or local folder; its LM head must be real weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prmbench.policies.hf import _is_pathlike, resolve_device
    from prmbench.reward_models.checkpoint import resolve_checkpoint
    from prmbench.reward_models.hf_rm import _quiet_transformers

    if _is_pathlike(spec) and not (Path(spec) / "config.json").is_file():
        raise ModelLoadError(f"--model {spec}: not a model folder (no config.json)")
    path = Path(spec) if _is_pathlike(spec) else resolve_checkpoint(spec, "similarity")[0]
    with _quiet_transformers():
        try:
            model, info = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype),
                                                               output_loading_info=True)
            tok = AutoTokenizer.from_pretrained(str(path))
        except Exception as e:
            raise ModelLoadError(f"--model {spec}: cannot load it as a causal LM ({str(e).splitlines()[0]})") from None
    missing = [k for k in info.get("missing_keys", []) if k]
    if missing:
        raise ModelLoadError(f"--model {spec} lacks {len(missing)} weight(s) of a causal LM (e.g. {sorted(missing)[0]}); "
                             f"the similarity needs a model with its LM head (F is the largest logit)")
    model.to(resolve_device(device, "similarity")).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok


# -- per-text activation vectors ---------------------------------------------------------------
def _weights(layers: Any, selected: Sequence[int]) -> list[tuple[int, str, Any, Any]]:
    """(layer, name, parameter, its nn.Linear or None) for every 2-D weight of the selected layers."""
    import torch

    out = []
    for li in selected:
        owners = {id(m.weight): m for m in layers[li].modules() if isinstance(m, torch.nn.Linear)}
        for name, p in layers[li].named_parameters():
            if p.ndim == 2:
                out.append((li, name, p, owners.get(id(p))))
    return out


def _batches(ids: list[list[int]], batch_size: int, max_tokens: int) -> Iterator[list[list[int]]]:
    batch: list[list[int]] = []
    for row in ids:
        if batch and (len(batch) >= batch_size or max(len(r) for r in batch + [row]) * (len(batch) + 1) > max_tokens):
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def _forward_f(model: Any, rows: list[list[int]]) -> Any:
    """F of each row (largest logit at its last real token), one right-padded forward pass."""
    import torch

    dev = next(model.parameters()).device
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    for j, r in enumerate(rows):
        ids[j, : len(r)] = torch.tensor(r)
    hidden = model.base_model(input_ids=ids.to(dev), use_cache=False).last_hidden_state
    last = hidden[torch.arange(len(rows), device=dev), torch.tensor([len(r) - 1 for r in rows], device=dev)]
    return model.get_output_embeddings()(last).float().max(dim=-1).values


class _Activations:
    """Per-text A = |W * dF_b/dW| of a batch for a group of weights, from one backward pass.

    `compute(rows, group)` returns, per weight of the group, a function b -> A of text b
    ([out, in], float32), formed on demand so at most one such matrix exists at a time.
    """

    def __init__(self, model: Any, per_text: bool):
        self.model, self.per_text = model, per_text

    def compute(self, rows: list[list[int]], group: list[tuple[int, str, Any, Any]]) -> list[Callable[[int], Any]]:
        """The activation functions of `group`'s weights for the texts `rows`."""
        import torch

        for _, _, p, _ in group:
            p.requires_grad_(True)  # puts these layers' outputs (or the weights themselves) on the graph
        captured: dict[int, tuple[Any, Any]] = {}
        hooks = []
        if not self.per_text:
            for k, (_, _, _, lin) in enumerate(group):
                def hook(mod: Any, inp: Any, out: Any, k: int = k) -> None:
                    captured[k] = (inp[0].detach(), out)
                hooks.append(lin.register_forward_hook(hook))
        try:
            f = _forward_f(self.model, rows)
            targets = [p for _, _, p, _ in group] if self.per_text else [captured[k][1] for k in range(len(group))]
            grads = torch.autograd.grad(f.sum(), targets)
        finally:
            for h in hooks:
                h.remove()
            for _, _, p, _ in group:
                p.requires_grad_(False)
        if self.per_text:  # one text: the weights' own gradients
            return [lambda b, p=p, g=g: (p.detach().float() * g.float()).abs() for (_, _, p, _), g in zip(group, grads)]
        lengths = [len(r) for r in rows]
        # text b's gradient of y = x W^T is sum over its tokens of g_t^T x_t (other rows' F do not depend on it)
        return [lambda b, p=p, x=captured[k][0], g=g: (p.detach().float()
                                                       * (g[b, : lengths[b]].float().T @ x[b, : lengths[b]].float())).abs()
                for k, ((_, _, p, _), g) in enumerate(zip(group, grads))]


def _layer_groups(weights: list[tuple[int, str, Any, Any]], tokens: int, budget_bytes: float,
                  per_text: bool) -> list[list[tuple[int, str, Any, Any]]]:
    """Whole layers grouped so that one batch's captured inputs and output gradients fit `budget_bytes`.

    A batch of `tokens` padded tokens keeps, per linear weight [out, in], tokens x (in + out)
    values; each group is one forward + backward pass. The per-text path keeps weight-sized
    gradients, so it takes every layer at once.
    """
    by_layer: dict[int, list[tuple[int, str, Any, Any]]] = {}
    for w in weights:
        by_layer.setdefault(w[0], []).append(w)
    if per_text:
        return [weights]
    groups: list[list[tuple[int, str, Any, Any]]] = []
    used = 0.0
    for layer in by_layer.values():
        cost = sum(tokens * (p.shape[0] + p.shape[1]) * p.element_size() for _, _, p, _ in layer)
        if groups and used + cost <= budget_bytes:
            groups[-1].extend(layer)
            used += cost
        else:
            groups.append(list(layer))
            used = cost
    return groups


def activation_similarity(model: Any, tokenizer: Any, texts_a: Sequence[str], texts_b: Sequence[str], *,
                          layers: str | None = None, batch_size: int = 8, max_tokens: int = 8192,
                          max_length: int = 2048, memory_mb: float = 2048, per_text: bool | None = None,
                          progress: Callable[[int], None] | None = None) -> SimilarityResult:
    """S(texts_a, texts_b) as defined in the module docstring.

    Memory beyond the model: one float32 copy of the selected layers' 2-D weights (set a's sum of
    unit vectors), the captured activations of one layer group (at most `memory_mb`, else one
    layer per pass) and one weight-sized matrix at a time. `batch_size` texts and `max_tokens`
    padded tokens per batch.
    """
    import torch

    if not texts_a or not texts_b:
        raise DataError("both sets need at least one text")
    if batch_size < 1 or max_length < 2 or max_tokens < 2 or memory_mb <= 0:
        raise ConfigError("--batch-size must be >= 1, --max-length >= 2 and the memory budget positive")
    blocks = decoder_layers(model)
    selected = parse_layers(layers, len(blocks))
    weights = _weights(blocks, selected)
    if not weights:
        raise ModelLoadError(f"layers {list(selected)} hold no 2-D weight matrix")
    if per_text is None:
        per_text = any(lin is None for _, _, _, lin in weights)
    acts = _Activations(model, per_text)
    size = 1 if per_text else batch_size
    truncated = 0

    def encode(texts: Sequence[str]) -> list[list[int]]:
        nonlocal truncated
        out = []
        for t in texts:
            ids = list(tokenizer(t)["input_ids"]) or [tokenizer.eos_token_id or 0]
            truncated += len(ids) > max_length
            out.append(ids[:max_length])
        return out

    index = {id(p): k for k, (_, _, p, _) in enumerate(weights)}
    acc = [torch.zeros(p.shape, dtype=torch.float32, device=p.device) for _, _, p, _ in weights]
    totals = {li: 0.0 for li in selected}
    zero = 0
    for which, texts in (("a", texts_a), ("b", texts_b)):
        for rows in _batches(encode(texts), size, max_tokens):
            padded = len(rows) * max(len(r) for r in rows)
            for group in _layer_groups(weights, padded, memory_mb * 2**20, per_text):
                parts = acts.compute(rows, group)
                group_layers = sorted({li for li, _, _, _ in group})
                for b in range(len(rows)):
                    sq = dict.fromkeys(group_layers, 0.0)
                    dots = dict.fromkeys(group_layers, 0.0)
                    for (li, _, p, _), make in zip(group, parts):
                        a = make(b)
                        sq[li] += float(a.pow(2).sum())
                        if which == "b":  # dot with set a's sum of unit vectors
                            dots[li] += float((a * acc[index[id(p)]]).sum())
                    norms = {li: math.sqrt(v) for li, v in sq.items()}
                    zero += sum(n == 0 for n in norms.values())
                    if which == "a":  # add this text's unit vector per layer (matrices formed again)
                        for (li, _, p, _), make in zip(group, parts):
                            if norms[li] > 0:
                                acc[index[id(p)]].add_(make(b), alpha=1.0 / norms[li])
                    else:
                        for li in group_layers:
                            totals[li] += dots[li] / norms[li] if norms[li] > 0 else 0.0
            if progress:
                progress(len(rows))
    pairs = len(texts_a) * len(texts_b)
    per_layer = {li: totals[li] / pairs for li in selected}
    return SimilarityResult(S=math.fsum(per_layer.values()), per_layer=per_layer, layers=selected, n_a=len(texts_a),
                            n_b=len(texts_b), truncated=truncated, zero_vectors=zero,
                            meta={"batched": not per_text, "max_length": max_length, "num_layers": len(blocks)})
