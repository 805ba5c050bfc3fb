"""In-process sampling with transformers: `--policy hf:HUB_ID` or `--policy hf:/local/dir`.

`HFPolicy` runs its own decoding loop over a KV cache instead of `model.generate`, because the
benchmark needs guarantees that `generate` does not give:

- **Per-sample seeds.** Every sample (row) draws from its own `torch.Generator` seeded with
  `request.seed + i`, one uniform number per generated token (inverse-CDF sampling), so sample i
  of an n-sample request equals the single-sample request with seed `seed + i`, whatever else is
  in the batch. Temperature 0 is greedy and draws nothing.
- **Left padding.** All samples of all requests are decoded together, `batch_size` rows per batch,
  left padded; position ids count only real tokens, so a row sees the positions it would see
  alone. Identical prompts are prefilled once and their cache rows shared; prompts of similar
  length are prefilled together, and recent prompts' prefills are kept for later calls
  (`prompt_cache_tokens`; see prmbench.policies.kv_cache, which also keeps each layer's cache in
  a growing buffer instead of copying it at every token). Rows that finish are dropped from the
  batch; a batch ends when all its rows are done.
- **Exact accounting.** `prompt_tokens` is the length of the rendered prompt (prefix included,
  padding excluded); `completion_tokens` counts every sampled token, including the eos token and
  the tokens that completed a stop string. `seconds` is the wall time of the batch a sample was
  decoded in divided by the number of samples in that batch.

Batch invariance is exact for the sampling step (done per row on the row's own logits) but only
numerical for the forward pass: padding and batch size change the summation order inside the
matrix products, so logits differ in the last bits (about 1e-7 relative in fp32). The sampled
tokens are identical unless two candidates are within that distance of a decision boundary;
in bf16 such flips happen more often. The tests check identical token ids for a tiny fp32 model.

Prompts: the messages are rendered with the tokenizer's chat template
(`add_generation_prompt=True`) and `request.prefix` is appended as the start of the assistant's
answer. With `chat_template=False`, or a tokenizer without a template, the prompt is the message
contents joined by blank lines followed by the prefix, tokenized with the tokenizer's special
tokens (e.g. a bos token).

A prompt close to the model's context length (`max_position_embeddings`) gets only the tokens
that fit (finish "length" with fewer than max_tokens); a prompt longer than it is a ConfigError.

Stop strings are searched in the decoded continuation only (not in the prompt or prefix); the
returned text is cut before the earliest stop string, which `stop_string` names. Text is decoded
without special tokens (like vLLM's default). Eos tokens are the tokenizer's eos token and the
ids of the model's generation_config.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from prmbench.env import env_flag
from prmbench.errors import ConfigError, ModelLoadError
from prmbench.interfaces import Policy
from prmbench.policies.validation import validate_request
from prmbench.types import FinishReason, GenRequest, Generation, Message

_DTYPES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


@dataclass(frozen=True)
class GenerationDetail:
    """A Generation together with the token ids behind it (for debugging and tests)."""

    generation: Generation
    prompt_ids: tuple[int, ...]
    token_ids: tuple[int, ...]


@dataclass
class _Row:
    """One sample being decoded."""

    req: int
    sample: int
    seed: int
    prompt_ids: list[int]
    max_new: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    tokens: list[int] = field(default_factory=list)
    finish: FinishReason | None = None
    text: str = ""
    stop_string: str | None = None
    seconds: float = 0.0


def _is_pathlike(spec: str) -> bool:
    """Whether `spec` must be a local folder (not a hub id such as `org/name`)."""
    return (
        spec.startswith(("/", "./", "../", "~", ".\\"))
        or spec.count("/") > 1
        or "\\" in spec
        or os.path.exists(spec)
    )


def _offline() -> bool:
    return env_flag("HF_HUB_OFFLINE") or env_flag("TRANSFORMERS_OFFLINE")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0].rstrip(". ") if text else type(e).__name__


def _sample_blocks(path: Path, size: int, blocks: int = 16, block: int = 1 << 16) -> bytes:
    """sha256 of `blocks` evenly spaced chunks of a (large) file: cheap, catches retrained weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for k in range(blocks):
            f.seek(max(0, (size - block) * k // max(1, blocks - 1)))
            h.update(f.read(block))
    return h.digest()


def resolve_device(device: str, who: str) -> str:
    """auto -> cuda when available, else cpu; validates explicit devices (errors name `who`)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"{who}: bad device {device!r} ({_first_line(e)}); use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{who}: device {device!r} asked for but CUDA is not available; use device=cpu or auto")
    return device


def resolve_dtype(dtype: str, device: str, who: str) -> str:
    """auto -> bfloat16 on CUDA, float32 elsewhere; accepts the usual aliases (bf16, fp16, fp32)."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise ConfigError(f"{who}: unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def fingerprint_dir(path: Path) -> str:
    """A hash of a local model folder, for the cache identity.

    Small files (config, generation config, tokenizer, chat template) count with their full
    contents; weight files with their size and 16 sampled 64 KiB blocks, so a folder whose
    weights were retrained in place gets a new fingerprint without reading gigabytes.
    """
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if not f.is_file() or any(part.startswith(".") for part in f.relative_to(path).parts):
            continue
        rel = f.relative_to(path).as_posix()
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        if rel.endswith(_WEIGHT_SUFFIXES) or size > 64 << 20:
            h.update(_sample_blocks(f, size))
        else:
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]



def count_safetensors_parameters(folder: Path) -> int | None:
    """Parameter count from the safetensors headers of a model folder; None when there are none
    or a header cannot be read."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for f in files:
            with open(f, "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(n))
            total += sum(math.prod(meta["shape"]) for name, meta in header.items() if name != "__metadata__")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return total

class HFPolicy(Policy):
    """A transformers causal LM sampled in-process with per-sample seeds (see module docstring).

    `model` is a Hugging Face Hub id (`Qwen/Qwen2.5-Math-1.5B-Instruct`) or a local folder with
    `config.json`, weights and tokenizer. `device` is auto (cuda when available, else cpu), cpu,
    cuda or cuda:N; `dtype` is auto (bfloat16 on cuda, float32 elsewhere), float32, bfloat16 or
    float16. `batch_size` is the number of samples decoded together. `prompt_cache_tokens` bounds
    the prompt tokens whose prefill is kept for later calls (0: none). `chat_template=False`
    renders prompts as plain text. Config and tokenizer load at construction (so errors show
    early); the weights load on first use.
    """

    version = "1"
    default_concurrency = 16  # concurrent searches fill batches (64 rows): ~9x the tokens/s of 4 rows
    share_prefill: bool = True  # rows with the same prompt share one prefill (results do not depend on it)

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", batch_size: int = 64,
                 revision: str | None = None, trust_remote_code: bool = False, chat_template: bool = True,
                 prompt_cache_tokens: int = 32768):
        import torch

        from prmbench.policies.kv_cache import PromptStore

        model = str(model).strip()
        if not model:
            raise ConfigError("hf policy needs a model: --policy hf:HUB_ID or --policy hf:/local/dir")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"hf policy: batch_size must be a positive integer (got {batch_size!r})")
        self.model_spec = model
        self.revision = revision
        self.trust_remote_code = bool(trust_remote_code)
        self.use_chat_template = bool(chat_template)
        self.batch_size = batch_size
        if not isinstance(prompt_cache_tokens, int) or prompt_cache_tokens < 0:
            raise ConfigError(f"hf policy: prompt_cache_tokens must be a non-negative integer (got {prompt_cache_tokens!r})")
        # prefills of recent prompts, reused by later calls (results do not depend on it; 0 turns it off)
        self.prompt_store = PromptStore(prompt_cache_tokens) if prompt_cache_tokens else None
        self.device = resolve_device(str(device), "hf policy")
        self.dtype_name = resolve_dtype(str(dtype), self.device, "hf policy")
        self.torch_dtype = getattr(torch, self.dtype_name)

        self.local_dir: Path | None = None
        self.commit: str | None = None
        if _is_pathlike(model):
            path = Path(model).expanduser()
            if not path.is_dir():
                raise ModelLoadError(
                    f"model folder {model!r} does not exist. Pass a folder holding config.json, weights and "
                    f"tokenizer (--policy hf:/local/dir) or a Hugging Face Hub id (--policy hf:Qwen/Qwen2.5-Math-1.5B-Instruct)."
                )
            if not (path / "config.json").is_file():
                raise ModelLoadError(
                    f"{model!r} has no config.json, so it is not a transformers model folder. Pass the folder that "
                    f"save_pretrained wrote (--policy hf:/local/dir); for a test model run "
                    f"`python -m prmbench.testing tiny-model DIR`."
                )
            self.local_dir = path.resolve()
            self._source = str(self.local_dir)
        else:
            self._source = model

        self.hf_config = self._load_config()
        self._check_causal(self.hf_config)
        self.tokenizer = self._load_tokenizer()
        if self.local_dir is None:
            self.commit = self._hub_commit()
        self._fingerprint = fingerprint_dir(self.local_dir) if self.local_dir is not None else None
        self._model: Any = None
        self._num_params: int | None = None
        self._keeps: bool | None = None  # whether model.forward takes logits_to_keep
        self._cache_name: str | None = None  # the keyword model.forward takes its KV cache under
        self._eos_ids = self._collect_eos_ids()
        self._has_template = bool(getattr(self.tokenizer, "chat_template", None))

    # -- resolution & loading ------------------------------------------------------------------
    def _hub_error(self, what: str, e: BaseException) -> ModelLoadError:
        if _offline():
            hint = ("HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1) is set, so only models already in the "
                    "Hugging Face cache load; unset it to download")
        else:
            hint = "check the id, your network and, for gated models, HF_TOKEN"
        at = f" at revision {self.revision!r}" if self.revision else ""
        return ModelLoadError(
            f"cannot load the {what} of {self.model_spec!r} from the Hugging Face Hub{at} (and it is not a "
            f"local folder): {_first_line(e)}. "
            f"Either {hint}, or download it first (`hf download {self.model_spec}`) and pass the local "
            f"folder: --policy hf:/local/dir"
        )

    def _load_config(self) -> Any:
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(self._source, revision=self.revision,
                                              trust_remote_code=self.trust_remote_code)
        except Exception as e:  # transformers raises OSError, ValueError, KeyError...
            if self.local_dir is not None:
                msg = _first_line(e)
                if "trust_remote_code" in str(e):
                    msg += "; pass --policy-args trust_remote_code=true if you trust this model's code"
                raise ModelLoadError(f"cannot read the config of model folder {self._source}: {msg}") from None
            raise self._hub_error("config", e) from None

    def _check_causal(self, config: Any) -> None:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        archs = list(getattr(config, "architectures", None) or [])
        auto_map = getattr(config, "auto_map", None) or {}
        known = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or "AutoModelForCausalLM" in auto_map
        causal_arch = not archs or any(a.endswith(_CAUSAL_SUFFIXES) for a in archs)
        if not known or not causal_arch:
            kind = ", ".join(archs) or config.model_type
            raise ModelLoadError(
                f"{self.model_spec!r} is not a causal language model ({kind}); the hf policy needs a model that "
                f"AutoModelForCausalLM loads (e.g. hf:Qwen/Qwen2.5-Math-1.5B-Instruct). Reward models belong in --rm."
            )

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(self._source, revision=self.revision,
                                                trust_remote_code=self.trust_remote_code)
        except Exception as e:
            if self.local_dir is not None:
                raise ModelLoadError(
                    f"cannot load the tokenizer of model folder {self._source}: {_first_line(e)}. The folder needs "
                    f"tokenizer.json or tokenizer.model next to config.json (tokenizer.save_pretrained writes them)."
                ) from None
            raise self._hub_error("tokenizer", e) from None
        if isinstance(tok, bool) or not callable(getattr(tok, "decode", None)):
            raise ModelLoadError(f"{self.model_spec!r} has no usable tokenizer")
        return tok

    def _hub_commit(self) -> str:
        from prmbench.hub import hub_commit

        return hub_commit(self._source, self.revision, "--policy-args")

    def _collect_eos_ids(self) -> list[int]:
        ids: list[int] = []

        def add(x: Any) -> None:
            for i in x if isinstance(x, (list, tuple)) else [x]:
                if isinstance(i, int) and i not in ids:
                    ids.append(i)

        add(self.tokenizer.eos_token_id)
        try:
            from transformers import GenerationConfig

            gen = GenerationConfig.from_pretrained(self._source, revision=self.revision)
            add(gen.eos_token_id)
        except Exception:  # no generation_config.json: fall back to config.json's eos
            add(getattr(self.hf_config, "eos_token_id", None))
        return ids

    @property
    def model(self) -> Any:
        """The loaded transformers model (loads the weights on first access)."""
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def _load_model(self) -> Any:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        if not sys.stderr.isatty():  # keep logs of non-interactive runs free of loading bars
            hf_logging.disable_progress_bar()
        try:
            model, info = AutoModelForCausalLM.from_pretrained(
                self._source, revision=self.revision, dtype=self.torch_dtype,
                trust_remote_code=self.trust_remote_code, output_loading_info=True,
            )
        except Exception as e:
            if self.local_dir is not None:
                raise ModelLoadError(
                    f"cannot load the weights of model folder {self._source}: {_first_line(e)}. The folder needs "
                    f"model.safetensors (or sharded weights with an index) as written by save_pretrained."
                ) from None
            raise self._hub_error("weights", e) from None
        missing = [k for k in info.get("missing_keys", []) if k]
        if missing:
            raise ModelLoadError(
                f"{self.model_spec!r}: the checkpoint lacks {len(missing)} weight(s) of a causal LM "
                f"(e.g. {sorted(missing)[0]}); it is probably a reward or embedding model, not a policy."
            )
        model.to(self.device)
        model.eval()
        return model

    # -- identity -------------------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Parameter count of the model (from safetensors headers when the weights are not loaded)."""
        if self._num_params is None:
            self._num_params = self._count_from_headers() if self._model is None else None
            if self._num_params is None:
                self._num_params = sum(p.numel() for p in self.model.parameters())
        return self._num_params

    def _count_from_headers(self) -> int | None:
        """Count parameters from the safetensors headers of a local folder; None when not possible."""
        return count_safetensors_parameters(self.local_dir) if self.local_dir is not None else None

    def config(self) -> dict[str, Any]:
        """Model, revision, dtype, prompt rendering and the model's content hash or hub commit."""
        return {
            "model": self.model_spec,
            "revision": self.revision,
            "commit": self.commit,
            "fingerprint": self._fingerprint,
            "dtype": self.dtype_name,
            "chat_template": self.use_chat_template and self._has_template,
            "trust_remote_code": self.trust_remote_code,
        }

    # -- prompts --------------------------------------------------------------------------------
    def render_prompt(self, messages: Sequence[Message], prefix: str = "") -> str:
        """The prompt text: chat template with generation prompt (or plain text) plus `prefix`."""
        if self.use_chat_template and self._has_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=True, tokenize=False,
            )
            return str(text) + prefix
        return "\n\n".join(m.content for m in messages) + prefix

    def prompt_ids(self, messages: Sequence[Message], prefix: str = "") -> list[int]:
        """Token ids of the rendered prompt (what the model reads before sampling)."""
        text = self.render_prompt(messages, prefix)
        templated = self.use_chat_template and self._has_template
        # A chat template writes its own special tokens; plain prompts get the tokenizer's (bos).
        return list(self.tokenizer(text, add_special_tokens=not templated)["input_ids"])

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str] | None = None) -> list[list[Generation]]:
        """For each request its n samples, sample i seeded with `seed + i` (see module docstring)."""
        return [[d.generation for d in ds] for ds in self.generate_detailed(requests)]

    def generate_detailed(self, requests: Sequence[GenRequest]) -> list[list[GenerationDetail]]:
        """Like `generate`, with the prompt and sampled token ids of every sample."""
        import torch

        rows: list[_Row] = []
        max_ctx = int(getattr(self.hf_config, "max_position_embeddings", 0) or 0)
        prompt_cache: dict[tuple[tuple[Message, ...], str], list[int]] = {}
        for r, req in enumerate(requests):
            self._validate(req)
            key = (tuple(req.messages), req.prefix)
            if key not in prompt_cache:
                prompt_cache[key] = self.prompt_ids(req.messages, req.prefix)
            ids = prompt_cache[key]
            max_new = req.max_tokens
            if max_ctx:
                if len(ids) >= max_ctx:
                    raise ConfigError(
                        f"hf policy: the prompt has {len(ids)} tokens but {self.model_spec!r} reads at most "
                        f"{max_ctx}; shorten the prompt or use a model with a longer context"
                    )
                max_new = min(max_new, max_ctx - len(ids))
            for i in range(req.n):
                rows.append(_Row(req=r, sample=i, seed=req.seed + i, prompt_ids=ids, max_new=max_new,
                                 temperature=float(req.temperature), top_p=float(req.top_p), stop=tuple(req.stop)))
        if rows:
            # Longest prompts first, identical prompts adjacent: less padding, shared prefill.
            first_seen: dict[tuple[int, ...], int] = {}
            for row in rows:
                first_seen.setdefault(tuple(row.prompt_ids), len(first_seen))
            order = sorted(rows, key=lambda x: (-len(x.prompt_ids), first_seen[tuple(x.prompt_ids)]))
            model = self.model
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    self._run_batch(model, order[start:start + self.batch_size])
        out: list[list[GenerationDetail]] = [[] for _ in requests]
        for row in rows:  # rows are in request order, samples in order
            gen = Generation(
                text=row.text, finish_reason=row.finish or "length", prompt_tokens=len(row.prompt_ids),
                completion_tokens=len(row.tokens), seed=row.seed, stop_string=row.stop_string,
                seconds=row.seconds,
            )
            out[row.req].append(GenerationDetail(gen, tuple(row.prompt_ids), tuple(row.tokens)))
        return out

    @staticmethod
    def _validate(req: GenRequest) -> None:
        validate_request(req, "hf")

    def _run_batch(self, model: Any, rows: list[_Row]) -> None:
        """Decode `rows` together until every row finished; fills each row's result fields."""
        import torch

        from prmbench.policies.kv_cache import prefill

        t0 = time.perf_counter()
        dev = torch.device(self.device)
        # Prefill each distinct prompt once; rows with the same prompt share it.
        # (`share_prefill = False`: every row prefilled on its own, the baseline of benchmarks/bench_concurrency.py)
        uniq: dict[Any, int] = {}
        prompts: list[tuple[int, ...]] = []
        row_src: list[int] = []
        for i, r in enumerate(rows):
            key = tuple(r.prompt_ids) if self.share_prefill else i
            if key not in uniq:
                uniq[key] = len(prompts)
                prompts.append(tuple(r.prompt_ids))
            row_src.append(uniq[key])
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (self._eos_ids[0] if self._eos_ids else 0)
        filled = prefill(model, self._forward, prompts, pad, dev, self.prompt_store if self.share_prefill else None)
        cache, logits, mask = filled.cache, filled.logits, filled.mask
        if len(prompts) != len(rows) or row_src != list(range(len(rows))):
            index = torch.tensor(row_src, dtype=torch.long, device=dev)
            cache.batch_select_indices(index)
            logits, mask = logits[index], mask[index]
        next_pos = mask.sum(-1)

        gens = [torch.Generator(device="cpu").manual_seed(r.seed) for r in rows]
        active = list(range(len(rows)))  # row numbers of the current batch lines
        while True:
            tokens = self._sample(logits, [rows[a] for a in active], [gens[a] for a in active])
            keep: list[int] = []
            for line, a in enumerate(active):
                row = rows[a]
                row.tokens.append(tokens[line])
                self._check_finished(row)
                if row.finish is None:
                    keep.append(line)
            if not keep:
                break
            if len(keep) != len(active):
                index = torch.tensor(keep, dtype=torch.long, device=dev)
                cache.batch_select_indices(index)
                mask, next_pos = mask[index], next_pos[index]
                active = [active[k] for k in keep]
                tokens = [tokens[k] for k in keep]
            step = torch.tensor(tokens, dtype=torch.long, device=dev).unsqueeze(1)
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=dev)], dim=1)
            logits = self._forward(model, step, mask, next_pos.unsqueeze(1), cache)
            next_pos = next_pos + 1
        share = (time.perf_counter() - t0) / len(rows)
        for r in rows:
            r.seconds = share

    def _forward(self, model: Any, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        """Run the model on `ids`; returns float32 logits of the last position, shape [rows, vocab]."""
        import torch

        kwargs: dict[str, Any] = dict(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        kwargs[self._cache_kwarg(model)] = cache
        if self._keeps_logits(model):
            kwargs["logits_to_keep"] = 1
        logits = model(**kwargs).logits[:, -1, :].float()
        n_vocab = len(self.tokenizer)
        if logits.shape[-1] > n_vocab:  # padded embedding rows are not tokens: never sample them
            logits[:, n_vocab:] = -torch.inf
        return logits

    def _cache_kwarg(self, model: Any) -> str:
        """The name under which `model.forward` takes the KV cache: `cache` (transformers >= 5.x,
        where `past_key_values` is deprecated and removed in 5.40) or `past_key_values` (older)."""
        if self._cache_name is None:
            import inspect

            try:
                params = inspect.signature(model.forward).parameters
            except (TypeError, ValueError):
                params = {}
            self._cache_name = "cache" if "cache" in params else "past_key_values"
        return self._cache_name

    def _keeps_logits(self, model: Any) -> bool:
        if self._keeps is None:
            import inspect

            try:
                self._keeps = "logits_to_keep" in inspect.signature(model.forward).parameters
            except (TypeError, ValueError):
                self._keeps = False
        return self._keeps

    @staticmethod
    def _sample(logits: Any, rows: list[_Row], gens: list[Any]) -> list[int]:
        """One token per row. Rows never influence each other: each uses its own logits row,
        temperature, top_p and generator, and the path taken depends only on the row's settings.

        Sampling is inverse-CDF: one uniform u from the row's generator picks the token whose
        cumulative probability interval contains u (in vocabulary order when top_p = 1, in
        descending-probability order within the top-p nucleus otherwise). Greedy rows (temperature
        0) take the argmax and draw nothing.
        """
        import torch

        out = [0] * len(rows)
        greedy = [k for k, r in enumerate(rows) if r.temperature <= 0]
        if greedy:
            picked = logits[greedy].argmax(dim=-1).tolist()
            for k, t in zip(greedy, picked):
                out[k] = int(t)
        full = [k for k, r in enumerate(rows) if r.temperature > 0 and r.top_p >= 1]
        nucleus = [k for k, r in enumerate(rows) if r.temperature > 0 and r.top_p < 1]
        for group, sort in ((full, False), (nucleus, True)):
            if not group:
                continue
            dev = logits.device
            rows_logits = logits if len(group) == len(rows) else logits[group]
            temps = torch.tensor([rows[k].temperature for k in group], dtype=torch.float32, device=dev)
            probs = torch.softmax(rows_logits / temps.unsqueeze(1), dim=-1)
            u = torch.tensor([float(torch.rand((), generator=gens[k], dtype=torch.float64)) for k in group],
                             dtype=torch.float64, device=dev)
            if sort:
                probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
                top_p = torch.tensor([rows[k].top_p for k in group], dtype=torch.float32, device=dev)
                # keep the smallest prefix whose mass reaches top_p (the top token always stays)
                before = probs.cumsum(dim=-1) - probs
                probs = probs * (before < top_p.unsqueeze(1))
            cdf = probs.cumsum(dim=-1)
            total = cdf[:, -1:]
            # target in [0, total): strictly below total, so the first cdf entry above it belongs
            # to a token of positive probability (a zero-probability token does not raise the cdf)
            target = (u.unsqueeze(1) * total.double()).float()
            target = torch.minimum(target, torch.nextafter(total, torch.zeros_like(total)))
            idx = torch.searchsorted(cdf, target, right=True)
            if sort:
                idx = order.gather(1, idx)
            for k, t in zip(group, idx.squeeze(1).tolist()):
                out[k] = int(t)
        return out

    def _decode(self, prompt_ids: Sequence[int], tokens: Sequence[int]) -> str:
        """Text of `tokens` as a continuation of the prompt.

        Decodes a few prompt tokens in front and strips their text, so tokenizers that drop a
        leading space at the start of a decode (SentencePiece) keep it, and bytes split across
        the prompt boundary decode correctly.
        """
        ctx = list(prompt_ids[-4:])
        kw = dict(skip_special_tokens=True, clean_up_tokenization_spaces=False)
        head = self.tokenizer.decode(ctx, **kw)
        full = self.tokenizer.decode(ctx + list(tokens), **kw)
        if ctx and full.startswith(head):
            return full[len(head):]
        return self.tokenizer.decode(list(tokens), **kw)

    def _check_finished(self, row: _Row) -> None:
        """Set the row's finish reason and text when its last token ended it."""
        last = row.tokens[-1]
        if last in self._eos_ids:
            row.finish = "eos"
            row.text = self._decode(row.prompt_ids, row.tokens[:-1])
            return
        if row.stop:
            longest = max(len(s) for s in row.stop)
            # A stop string that first appears now ends in the last token; it spans at most
            # 4 bytes per character, so the last 4 * longest + 4 tokens hold it. Screen them
            # cheaply, then confirm on the full decoded continuation.
            window = row.tokens[-(4 * longest + 4):]
            screen = self.tokenizer.decode(window, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            if any(s in screen for s in row.stop):
                text = self._decode(row.prompt_ids, row.tokens)
                hits = [(text.find(s), n, s) for n, s in enumerate(row.stop) if s in text]
                if hits:
                    pos, _, s = min(hits)
                    row.finish, row.text, row.stop_string = "stop", text[:pos], s
                    return
        if len(row.tokens) >= row.max_new:
            row.finish = "length"
            row.text = self._decode(row.prompt_ids, row.tokens)

    def close(self) -> None:
        """Drop the model (frees its memory once no one else holds it)."""
        self._model = None
