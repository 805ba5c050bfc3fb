"""Sampling from any OpenAI-compatible server: `--policy openai:MODEL`.

Works with `vllm serve`, SGLang, TGI, llama.cpp's server and `transformers serve`. The policy
renders the prompt itself, with the chat template of the model's tokenizer
(`add_generation_prompt=True`, then `request.prefix` as the start of the assistant's answer,
exactly as the hf backend does), and sends it as plain text to `/v1/completions`, so a partial
solution is continued, not restarted: step-wise search works.

- **Seeds.** Sample i of a request is its own HTTP request with `seed = request.seed + i` and no
  `n`, so a sample never depends on how many samples or requests travel together. (Whether the
  server honours the seed under concurrent load is up to the server: vLLM and SGLang do;
  `transformers serve` seeds one global generator per request, so it is reproducible only one
  request at a time; its managed launcher sets `max_concurrent_requests=1`.)
- **Accounting.** `prompt_tokens` and `completion_tokens` come from the server's `usage`; the
  prompt count is checked against the local tokenizer (a mismatch means the server tokenizes
  the prompt differently, and is an error). The prompt travels as text when the server's
  tokenization (with the tokenizer's special tokens, checked here) reproduces the exact prompt
  ids, else as the token ids (see `OpenAIPolicy.wire_prompt`).
- **Finish reasons.** The text is cut before the earliest stop string found in it (servers
  that return the stop string, such as `transformers serve`, get the same text as those that
  cut it). A server's `stop_reason` (vLLM) or `matched_stop` (SGLang) names the stop string it
  cut; `finish_reason` "stop" without either and without a stop string in the text is the
  model's eos token. "length" stays "length".
- **Errors.** Connection errors, timeouts, 429 and 5xx are retried with backoff (`retries`); an
  unreachable server, a model it does not serve or a refused parameter is a user error (exit 2)
  naming the URL.

The cache identity is the server's model name, the revision when given, and the tokenizer's
content hash (a local folder) or name, plus the prompt rendering.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from prmbench.errors import ConfigError, ModelLoadError
from prmbench.interfaces import Policy
from prmbench.policies.openai_client import ClientSettings, OpenAIClient
from prmbench.policies.validation import validate_request
from prmbench.types import FinishReason, GenRequest, Generation, Message

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


def render_chat_prompt(tokenizer: Any, messages: Sequence[Message], prefix: str, use_template: bool) -> str:
    """The prompt text: the chat template with a generation prompt, then `prefix` (as HFPolicy).

    Without a template (or with `use_template` False) it is the message contents joined by blank
    lines, then the prefix.
    """
    if use_template and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in messages],
                                             add_generation_prompt=True, tokenize=False)
        return str(text) + prefix
    return "\n\n".join(m.content for m in messages) + prefix


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{what} must be true or false (got {value!r})")


def finish_of(choice: Mapping[str, Any], text: str, stop: Sequence[str]) -> tuple[str, FinishReason, str | None]:
    """(text cut before its stop string, finish reason, stop string) of one answer choice."""
    hits = [(text.find(s), n, s) for n, s in enumerate(stop) if s and s in text]
    if hits:
        pos, _, s = min(hits)
        return text[:pos], "stop", s
    raw = choice.get("finish_reason")
    if raw == "length":
        return text, "length", None
    named = choice.get("stop_reason", choice.get("matched_stop"))
    if isinstance(named, str) and named in stop:
        return text, "stop", named
    return text, "eos", None


class OpenAIPolicy(Policy):
    """A model behind an OpenAI-compatible `/v1/completions` endpoint (see module docstring).

    `model` is the name the server serves it under (for `vllm serve DIR` and
    `transformers serve DIR`, DIR). `tokenizer` (a local folder or hub id) renders the chat
    template; it defaults to `model` when that is a local folder or a hub id in the local
    cache. `api_key_env` names the environment variable holding the API key.
    `num_parameters` feeds the FLOPs estimate (default: counted from the safetensors headers
    of the tokenizer folder, when it holds weights). `max_concurrent_requests` bounds the
    requests in flight; `timeout` (seconds per request) and `retries` govern failures.
    `prompt_format` (auto, text, ids) says how the prompt travels (see `wire_prompt`).
    """

    version = "1"
    default_concurrency: ClassVar[int] = 8  # problems searched at once: as many as requests in flight by default

    def __init__(self, model: str, base_url: str = DEFAULT_BASE_URL, api_key_env: str | None = None,
                 tokenizer: str | None = None, num_parameters: int | None = None,
                 max_concurrent_requests: int = 8, timeout: float = 600.0, retries: int = 5,
                 revision: str | None = None, chat_template: bool = True, prompt_format: str = "auto",
                 check_model: bool = True):
        model = str(model).strip()
        if not model:
            raise ConfigError("openai policy needs the served model's name: --policy openai:MODEL")
        self.model_spec = model
        self.revision = revision
        self.use_chat_template = _as_bool(chat_template, "openai policy: chat_template")
        if prompt_format not in ("auto", "text", "ids"):
            raise ConfigError(f"openai policy: prompt_format must be auto, text or ids (got {prompt_format!r})")
        self.prompt_format = prompt_format
        api_key = None
        if api_key_env:
            api_key = os.environ.get(str(api_key_env))
            if not api_key:
                raise ConfigError(f"openai policy: environment variable {api_key_env} (api_key_env) is not set")
        try:
            settings = ClientSettings(base_url=str(base_url), api_key=api_key, timeout=float(timeout),
                                      retries=int(retries), max_concurrent_requests=int(max_concurrent_requests))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"openai policy: bad timeout, retries or max_concurrent_requests ({e})") from None
        if not settings.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"openai policy: base_url must start with http:// or https:// (got {base_url!r})")
        self.client = OpenAIClient(settings)
        self.base_url = self.client.base_url
        self.tokenizer, self._tokenizer_id, tok_dir = self._load_tokenizer(tokenizer)
        if num_parameters is not None:
            try:
                self._num_params = int(float(num_parameters))
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(f"openai policy: num_parameters must be an integer (got {num_parameters!r})") from None
        else:
            from prmbench.policies.hf import count_safetensors_parameters

            self._num_params = (count_safetensors_parameters(tok_dir) if tok_dir is not None else None) or 0
        if check_model:
            self._check_served()

    # -- set-up ---------------------------------------------------------------------------------
    def _load_tokenizer(self, spec: str | None) -> tuple[Any, str | None, Path | None]:
        """(tokenizer or None, its identity for the cache, its local folder or None)."""
        from transformers import AutoTokenizer

        from prmbench.policies.hf import _first_line, _is_pathlike, fingerprint_dir

        explicit = spec is not None and str(spec).strip() != ""
        source = str(spec).strip() if explicit else self.model_spec
        local = _is_pathlike(source)
        if local and not Path(source).expanduser().is_dir():
            if explicit:
                raise ModelLoadError(f"openai policy: tokenizer folder {source!r} does not exist")
            return self._no_tokenizer()
        try:
            tok = AutoTokenizer.from_pretrained(str(Path(source).expanduser()) if local else source,
                                                revision=None if explicit else self.revision,
                                                local_files_only=not explicit or local)
        except Exception as e:
            if explicit:
                raise ModelLoadError(f"openai policy: cannot load tokenizer {source!r}: {_first_line(e)}") from None
            return self._no_tokenizer()
        if local:
            folder = Path(source).expanduser().resolve()
            return tok, f"{folder.name}#{fingerprint_dir(folder)}", folder
        return tok, source, None

    def _no_tokenizer(self) -> tuple[Any, str | None, Path | None]:
        if self.use_chat_template:
            raise ConfigError(
                f"openai policy: no local tokenizer for {self.model_spec!r}, so its chat template cannot be rendered; "
                f"pass --policy-args tokenizer=HUB_ID_OR_DIR (or chat_template=false to send plain text prompts)"
            )
        return None, None, None

    def _check_served(self) -> None:
        served = self.client.models()
        if served and self.model_spec not in served:
            listed = ", ".join(repr(m) for m in served[:8])
            raise ConfigError(f"the server at {self.base_url} does not serve model {self.model_spec!r} (it serves "
                              f"{listed}); use --policy openai:<one of them>")

    # -- identity -------------------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """The `num_parameters` argument, else the count from local safetensors headers, else 0."""
        return self._num_params

    def config(self) -> dict[str, Any]:
        """The served model's name, revision, tokenizer identity and prompt rendering."""
        return {
            "model": self.model_spec,
            "revision": self.revision,
            "tokenizer": self._tokenizer_id,
            "chat_template": self._templated(),
            "prompt_format": self.prompt_format,
        }

    # -- prompts --------------------------------------------------------------------------------
    def render_prompt(self, messages: Sequence[Message], prefix: str = "") -> str:
        """The prompt text sent to the server (chat template + prefix, or plain text)."""
        return render_chat_prompt(self.tokenizer, messages, prefix, self.use_chat_template)

    def _templated(self) -> bool:
        return self.use_chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_ids(self, text: str) -> list[int] | None:
        """Exact token ids of a rendered prompt, as the hf backend reads it (None without a tokenizer):
        a chat template writes its own special tokens; a plain prompt gets the tokenizer's."""
        if self.tokenizer is None:
            return None
        return list(self.tokenizer(text, add_special_tokens=not self._templated())["input_ids"])

    def wire_prompt(self, text: str, ids: list[int] | None) -> str | list[int]:
        """What is sent as `prompt`: text, or the token ids when text cannot reproduce them.

        Servers tokenize a text prompt with the tokenizer's special tokens (vLLM, SGLang and
        `transformers serve` do), so a bos token the chat template wrote is left for them to add.
        With `prompt_format=auto` the text is sent when that tokenization, done here, gives exactly
        `ids`; otherwise (SentencePiece tokenizers tokenize the text after a bos differently) the
        ids themselves go (the OpenAI API accepts a list of token ids; vLLM and SGLang do,
        `transformers serve` does not). The server's prompt-token count is checked either way.
        """
        if self.prompt_format == "ids":
            if ids is None:
                raise ConfigError("openai policy: prompt_format=ids needs a tokenizer (--policy-args tokenizer=DIR)")
            return ids
        if self.prompt_format == "text" or ids is None or not self._templated():
            return text
        bos = getattr(self.tokenizer, "bos_token", None)
        sent = text[len(bos):] if bos and text.startswith(bos) else text
        if list(self.tokenizer(sent, add_special_tokens=True)["input_ids"]) == ids:
            return sent
        if sent is not text and list(self.tokenizer(text, add_special_tokens=True)["input_ids"]) == ids:
            return text
        return ids

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str] | None = None) -> list[list[Generation]]:
        """For each request its n samples, sample i its own HTTP request with seed `seed + i`."""
        bodies: list[dict[str, Any]] = []
        owners: list[tuple[int, int, int | None]] = []  # (request, sample, exact prompt length)
        prompts: dict[tuple[tuple[Message, ...], str], tuple[str | list[int], int | None]] = {}
        for r, req in enumerate(requests):
            self._validate(req)
            key = (tuple(req.messages), req.prefix)
            if key not in prompts:
                text = self.render_prompt(req.messages, req.prefix)
                ids = self.prompt_ids(text)
                prompts[key] = (self.wire_prompt(text, ids), None if ids is None else len(ids))
            wire, length = prompts[key]
            for i in range(req.n):
                bodies.append(self._body(wire, req, req.seed + i))
                owners.append((r, i, length))
        answers: list[Generation | None] = [None] * len(bodies)

        def done(k: int, answer: Any, seconds: float) -> None:
            r, i, length = owners[k]
            answers[k] = self._parse(answer, requests[r], requests[r].seed + i, length, seconds)

        self.client.complete_many(bodies, on_done=done)
        out: list[list[Generation]] = [[] for _ in requests]
        for (r, _, _), gen in zip(owners, answers):
            assert gen is not None
            out[r].append(gen)
        return out

    def _body(self, prompt: str | list[int], req: GenRequest, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_spec, "prompt": prompt, "max_tokens": req.max_tokens,
                                "temperature": req.temperature, "top_p": req.top_p, "seed": seed}
        if req.stop:
            body["stop"] = list(req.stop)
        return body

    def _parse(self, answer: Any, req: GenRequest, seed: int, expected_prompt: int | None, seconds: float) -> Generation:
        try:
            choice = answer["choices"][0]
            text = str(choice.get("text") or "")
            usage = answer["usage"]
            prompt_tokens, completion_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise ConfigError(f"the server at {self.base_url} sent a completion without choices[0].text and usage "
                              f"token counts; prmbench needs an OpenAI-compatible /v1/completions") from None
        if expected_prompt is not None and prompt_tokens != expected_prompt:
            raise ConfigError(
                f"the server at {self.base_url} counted {prompt_tokens} prompt tokens where the local tokenizer "
                f"({self._tokenizer_id}) counts {expected_prompt}: it tokenizes the prompt differently (another "
                f"tokenizer, or it adds special tokens), so continuations would not be exact; pass the served "
                f"model's tokenizer with --policy-args tokenizer=DIR"
            )
        if completion_tokens > req.max_tokens:
            raise ConfigError(f"the server at {self.base_url} generated {completion_tokens} tokens for "
                              f"max_tokens={req.max_tokens}; it does not honour max_tokens")
        text, finish, stop_string = finish_of(choice, text, req.stop)
        return Generation(text=text, finish_reason=finish, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, seed=seed, stop_string=stop_string, seconds=seconds)

    @staticmethod
    def _validate(req: GenRequest) -> None:
        validate_request(req, "openai")

    def close(self) -> None:
        """Stop the client's worker threads."""
        self.client.close()
