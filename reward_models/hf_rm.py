"""The shared engine of transformers reward models: encode, batch, truncate, read scores.

Every family (qwen_prm, shepherd_prm, value_head_prm, rlhflow_prm, orm) is a backbone transformer
plus a small head read at chosen token positions. A family only says how canonical text steps
become token ids (`encode`: the ids and, per step, the position whose hidden state scores it) and
how its head turns hidden states into scores in [0, 1] (`_load`); this module does the rest:

- **Batching.** Inputs are sorted by length (longest first) and cut into batches of at most
  `batch_size` rows and `max_batch_tokens` padded tokens (rows x longest row), closing a batch
  before pads would exceed `max_padding` (5%) of its tokens: padding is pure waste (on 2 CPU
  cores, batches with ~20% padding scored 0.75x as fast as one input at a time; with the 5% cap
  they are faster, see benchmarks/README.md). Right padding (the default) runs without an attention mask: under
  the causal mask no real token sees the pads behind it, and pads are never read, so the fast
  causal attention kernels apply. Left padding masks the pads and counts positions over real
  tokens only. Either way, padding and the batch an input lands in do not change its scores (up
  to float summation order: about 1e-6 in float32).
- **Heads on positions only.** The backbone's last hidden states are gathered at the read
  positions and only then sent through the head (for language-model heads: just the two label
  rows of the output matrix), never a full-vocabulary projection of every token.
- **Precision and device.** `device=auto` picks CUDA when available; `dtype=auto` is bfloat16 on
  CUDA and float32 on CPU. Heads always run in float32.
- **Long inputs.** `max_length` defaults to the model's `max_position_embeddings`. An input
  longer than that is cut to its first `max_length` tokens (the question and the leading steps
  are kept; nothing is ever cut from the front). Steps whose read position falls inside the kept
  tokens are scored as usual; the steps after them get no score, so `step_scores` is shorter than
  the step list, and `RMOutput.truncated` is True (the runner writes `rm_truncated` into the
  record, `prmbench score` a `truncated` field). An outcome RM reads the last token, so a cut
  solution gets no score at all (aggregate 0.0) and `truncated=True`.
- **Metering.** `RMOutput.tokens` is the number of tokens the model read for the candidate
  (after the cut); `num_parameters` is the checkpoint's parameter count, so the meter's RM FLOPs
  are 2 x parameters x tokens.

The checkpoint loads lazily on the first score (tokenizer and config at construction, so a bad
spec fails early); `cache_id` changes with the checkpoint's content, family arguments and version.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from prmbench.aggregate import check_aggregation
from prmbench.errors import ConfigError, ModelLoadError
from prmbench.interfaces import RewardModel, Task
from prmbench.policies.hf import fingerprint_dir, resolve_device, resolve_dtype
from prmbench.reward_models.checkpoint import resolve_checkpoint
from prmbench.types import Problem, RMOutput


@dataclass(frozen=True)
class Encoded:
    """One candidate as the model reads it: token ids and, per score, the position to read."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]


class FormatError(ModelLoadError):
    """A tokenizer that does not produce the family's separator/label tokens as single tokens."""


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence loading bars and warnings about head weights prmbench reads on its own."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def single_token(tokenizer: Any, text: str, what: str, family: str) -> int:
    """The id of `text` when the tokenizer encodes it as exactly one token, else FormatError."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise FormatError(f"{family}: the tokenizer encodes the {what} {text!r} as {len(ids)} tokens {ids}, not one; "
                          f"use the checkpoint's own tokenizer (a stock base-model tokenizer lacks it)")
    return int(ids[0])


def locate_tokens(tokenizer: Any, text: str, spans: Sequence[tuple[int, int]], token_id: int, family: str,
                  add_special_tokens: bool = False) -> tuple[list[int], list[int]]:
    """Tokenize `text` and find, for each inserted character span, the one token of `token_id` covering it.

    Separators are looked up where prmbench inserted them (by character offsets), so a step
    whose own text happens to contain the separator never adds or shifts a score.
    """
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    positions: list[int] = []
    t = 0
    for start, end in spans:
        while t < len(ids) and offsets[t][1] <= start:  # tokens that end before the separator
            t += 1
        found = None
        while t < len(ids) and offsets[t][0] < end:
            t += 1
            if ids[t - 1] == token_id:
                found = t - 1
                break
        if found is None:
            raise FormatError(f"{family}: the separator at characters {start}-{end} did not become token {token_id} "
                              f"({tokenizer.convert_ids_to_tokens(token_id)!r}); the tokenizer does not match this family")
        positions.append(found)
    return ids, positions


class HFRewardModel(RewardModel):
    """Base of the transformers reward-model families (see the module docstring for the engine).

    Arguments shared by every family: `checkpoint` (Hub id or local folder; the part after the
    colon in `--rm family:CHECKPOINT`), `aggregation` (last | min | prod | mean), `device`
    (auto | cpu | cuda | cuda:N), `dtype` (auto | float32 | bfloat16 | float16), `batch_size`
    (rows per forward pass), `max_batch_tokens` (padded tokens per forward pass), `max_padding`
    (largest share of pad tokens in a batch; default 0.05), `max_length`
    (longest input read; default and upper bound: the model's context), `padding_side`
    (right | left; scores do not depend on it), `revision` (Hub revision).
    """

    family: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Publish one signature with the family's and the shared arguments (families pass the shared
        ones through **kwargs), so the registry can reject a misspelt argument with the full list."""
        super().__init_subclass__(**kwargs)
        own = [p for p in inspect.signature(cls.__init__).parameters.values()
               if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"]
        names = {p.name for p in own}
        shared = [p for p in inspect.signature(HFRewardModel.__init__).parameters.values()
                  if p.name != "self" and p.name not in names]
        params = [p.replace(kind=p.POSITIONAL_OR_KEYWORD) for p in own[:1]]
        params += [p.replace(kind=p.KEYWORD_ONLY) for p in own[1:] + shared]
        cls.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]

    def __init__(self, checkpoint: str, aggregation: str = "min", device: str = "auto", dtype: str = "auto",
                 batch_size: int = 16, max_batch_tokens: int = 16384, max_padding: float = 0.05,
                 max_length: int | None = None, padding_side: str = "right", revision: str | None = None):
        import torch

        for name, value in (("batch_size", batch_size), ("max_batch_tokens", max_batch_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{self.family}: {name} must be a positive integer (got {value!r})")
        if not isinstance(max_padding, (int, float)) or not 0 <= max_padding < 1:
            raise ConfigError(f"{self.family}: max_padding is a share of padded tokens in [0, 1) (got {max_padding!r})")
        if padding_side not in ("left", "right"):
            raise ConfigError(f"{self.family}: padding_side must be left or right (got {padding_side!r})")
        self.checkpoint = str(checkpoint)
        self.aggregation = check_aggregation(aggregation)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_padding = float(max_padding)
        self.padding_side = padding_side
        self.revision = revision
        self.device = resolve_device(str(device), self.family)
        self.dtype_name = resolve_dtype(str(dtype), self.device, self.family)
        self.torch_dtype = getattr(torch, self.dtype_name)
        self.path, self.commit = resolve_checkpoint(self.checkpoint, self.family, revision)
        self._fingerprint = fingerprint_dir(self.path)
        with _quiet_transformers():
            self.hf_config = self._load_config()
            self.tokenizer = self._load_tokenizer()
        limit = int(getattr(self.hf_config, "max_position_embeddings", 0) or 0) or None
        if max_length is not None:
            if not isinstance(max_length, int) or max_length < 2:
                raise ConfigError(f"{self.family}: max_length must be an integer >= 2 (got {max_length!r})")
            if limit is not None and max_length > limit:
                raise ConfigError(f"{self.family}: max_length={max_length} exceeds the model's context of {limit} "
                                  f"tokens; use max_length={limit} or less")
        self.max_length = max_length or limit or 4096
        self._backbone: Any = None
        self._head: Callable[[Any], Any] | None = None
        self._num_params: int | None = None

    # -- loading ------------------------------------------------------------------------------
    def _load_config(self) -> Any:
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(str(self.path))
        except Exception as e:
            raise ModelLoadError(f"{self.family}: cannot read the config of {self.checkpoint!r}: {e}".splitlines()[0]) from None

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(self.path))
        except Exception as e:
            raise ModelLoadError(f"{self.family}: cannot load the tokenizer of {self.checkpoint!r} "
                                 f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); the folder needs "
                                 f"tokenizer.json (or tokenizer.model with sentencepiece installed)") from None
        if not getattr(tok, "is_fast", False):
            raise ModelLoadError(f"{self.family}: {self.checkpoint!r} has only a slow tokenizer; prmbench locates "
                                 f"separators by character offsets and needs tokenizer.json")
        return tok

    @abstractmethod
    def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
        """Load the weights: (backbone returning last_hidden_state, head: float32 [n, hidden] -> scores [n], parameter count)."""

    def _ensure_loaded(self) -> None:
        if self._backbone is None:
            with _quiet_transformers():
                backbone, head, n = self._load()
            backbone.to(self.device)
            backbone.eval()
            self._backbone, self._head, self._num_params = backbone, head, n

    @property
    def num_parameters(self) -> int:
        """Parameter count of the checkpoint (loads the weights on first access)."""
        self._ensure_loaded()
        assert self._num_params is not None
        return self._num_params

    def config(self) -> dict[str, Any]:
        """Checkpoint (spec, content hash, Hub commit), precision, context cut and family arguments."""
        return {"checkpoint": self.checkpoint, "fingerprint": self._fingerprint, "commit": self.commit,
                "revision": self.revision, "dtype": self.dtype_name, "max_length": self.max_length,
                "aggregation": self.aggregation, **self.format_config()}

    def format_config(self) -> dict[str, Any]:
        """Family arguments that change the input format or the score (system prompt, tags...)."""
        return {}

    # -- scoring ------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, task: Task | None, question: str, steps: Sequence[str]) -> Encoded:
        """The token ids the checkpoint reads for (question, steps), and the read position of each score."""

    def score(self, task: Task, problem: Problem, candidates: Sequence[Sequence[str]]) -> list[RMOutput]:
        """Scores of each candidate's steps for `problem` (see the module docstring)."""
        return self.score_items(task, [(problem.question, list(c)) for c in candidates])

    def score_items(self, task: Task | None, items: Sequence[tuple[str, Sequence[str]]]) -> list[RMOutput]:
        """Score many (question, steps) pairs at once, batched across questions; outputs in input order."""
        import torch

        encoded = [self.encode(task, q, steps) if steps else Encoded((), ()) for q, steps in items]
        outs: list[RMOutput | None] = [None] * len(items)
        todo = []
        for i, enc in enumerate(encoded):
            if not enc.ids:
                outs[i] = RMOutput(step_scores=())
                continue
            ids = enc.ids[: self.max_length]
            keep = tuple(p for p in enc.positions if p < len(ids))
            todo.append((i, ids, keep, len(keep) < len(enc.positions)))
        if todo:
            self._ensure_loaded()
            todo.sort(key=lambda x: -len(x[1]))
            with torch.inference_mode():
                for batch in self._batches(todo):
                    t0 = time.perf_counter()
                    scores = self._forward([ids for _, ids, _, _ in batch], [pos for _, _, pos, _ in batch])
                    share = (time.perf_counter() - t0) / len(batch)
                    for (i, ids, _, cut), s in zip(batch, scores):
                        outs[i] = RMOutput(step_scores=tuple(s), tokens=len(ids), seconds=share, truncated=cut)
        return [o for o in outs if o is not None]

    def _batches(self, rows: list[Any]) -> Iterator[list[Any]]:
        """Consecutive rows (sorted longest first) under the row, padded-token and padding-share budgets."""
        batch: list[Any] = []
        real = 0
        for row in rows:
            width = len(batch[0][1]) if batch else len(row[1])
            padded = width * (len(batch) + 1)
            if batch and (len(batch) >= self.batch_size or padded > self.max_batch_tokens
                          or padded * (1.0 - self.max_padding) > real + len(row[1])):
                yield batch
                batch, real = [], 0
            batch.append(row)
            real += len(row[1])
        if batch:
            yield batch

    def _forward(self, rows: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]) -> list[list[float]]:
        """Scores at `positions` of each row, one padded forward pass."""
        import torch

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        shift = []
        for j, r in enumerate(rows):
            off = width - len(r) if self.padding_side == "left" else 0
            ids[j, off:off + len(r)] = torch.tensor(r, dtype=torch.long)
            mask[j, off:off + len(r)] = 1
            shift.append(off)
        dev = torch.device(self.device)
        ids, mask = ids.to(dev), mask.to(dev)
        if self.padding_side == "left":  # mask the pads in front; positions count real tokens only
            kwargs = {"attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}
        else:
            # Right padding needs neither: under the causal mask a real token never sees the pads
            # after it, its positions are 0..n-1 anyway, and pad positions are never read. Without
            # a padding mask the attention kernels take their fast causal path.
            kwargs = {}
        hidden = self._backbone(input_ids=ids, use_cache=False, **kwargs).last_hidden_state
        b_idx = [j for j, p in enumerate(positions) for _ in p]
        t_idx = [shift[j] + q for j, p in enumerate(positions) for q in p]
        if not b_idx:
            return [[] for _ in rows]
        picked = hidden[torch.tensor(b_idx, device=dev), torch.tensor(t_idx, device=dev)].float()
        assert self._head is not None
        flat = self._head(picked).tolist()
        out, k = [], 0
        for p in positions:
            out.append([float(x) for x in flat[k:k + len(p)]])
            k += len(p)
        return out

    def close(self) -> None:
        """Drop the weights."""
        self._backbone = None
        self._head = None


def count_parameters(*modules: Any) -> int:
    """Total parameters of the given torch modules (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def mlp_head(weights: dict[str, Any], where: str, family: str) -> Any:
    """The two-layer head Linear(h, h) -> ReLU -> Linear(h, n) from weights named 0.* and 2.*, in float32."""
    import torch

    need = ["0.weight", "0.bias", "2.weight", "2.bias"]
    missing = [k for k in need if k not in weights]
    if missing:
        raise ModelLoadError(f"{family}: the checkpoint lacks the head weights {', '.join(where + k for k in missing)}; "
                             f"is it a checkpoint of this family?")
    w0, w2 = weights["0.weight"], weights["2.weight"]
    head = torch.nn.Sequential(torch.nn.Linear(w0.shape[1], w0.shape[0]), torch.nn.ReLU(),
                               torch.nn.Linear(w2.shape[1], w2.shape[0]))
    head.load_state_dict({k: weights[k].float() for k in need})
    return head.float().eval()


def load_backbone(path: Path, dtype: Any, family: str, checkpoint: str) -> Any:
    """The base transformer (no task head) of a checkpoint, whatever head class it was saved with."""
    from transformers import AutoModel

    try:
        model, info = AutoModel.from_pretrained(str(path), dtype=dtype, trust_remote_code=False,
                                                output_loading_info=True)
    except Exception as e:
        raise ModelLoadError(f"{family}: cannot load the weights of {checkpoint!r}: {str(e).splitlines()[0]}") from None
    missing = [k for k in info.get("missing_keys", []) if k]
    if missing:
        raise ModelLoadError(f"{family}: {checkpoint!r} lacks {len(missing)} backbone weight(s) (e.g. {sorted(missing)[0]}); "
                             f"it is not a checkpoint of this family")
    return model


def label_token_head(rm: HFRewardModel, label_ids: tuple[int, int]) -> tuple[Any, Callable[[Any], Any], int]:
    """A causal LM as a judge: P(first label) under a softmax over the two label tokens only.

    Loads the checkpoint with AutoModelForCausalLM, keeps its base transformer and just the two
    rows of the output projection (with their bias, if any); returns (backbone, head, parameter count).
    """
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(rm.path), dtype=rm.torch_dtype)
    except Exception as e:
        raise ModelLoadError(f"{rm.family}: cannot load {rm.checkpoint!r} as a causal LM: {str(e).splitlines()[0]}") from None
    n_params = count_parameters(model)
    out = model.get_output_embeddings()
    rows = torch.tensor(label_ids)
    weight = out.weight.detach()[rows].float().to(rm.device)
    bias = out.bias.detach()[rows].float().to(rm.device) if getattr(out, "bias", None) is not None else None

    def first_label_prob(h: Any) -> Any:
        logits = h @ weight.T + (bias if bias is not None else 0.0)
        return torch.softmax(logits, dim=-1)[:, 0]

    return model.base_model, first_label_prob, n_params
