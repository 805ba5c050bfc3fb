"""Policies that start their own server: `--policy vllm:MODEL`, `sglang:MODEL`, `transformers-serve:MODEL`.

Each one starts the server on a free loopback port (prmbench.policies.launcher), then samples
from it exactly like `openai:MODEL` (prmbench.policies.openai), and stops the server's whole
process group when the run ends, is interrupted or crashes. Policy arguments: `seed` (the
server's global seed; every request still carries its own), `dtype`, `tensor_parallel_size`,
`gpu_memory_utilization` (vLLM's and SGLang's share of GPU memory), `max_model_len`,
`revision`, `server_args` (more flags, one string), `startup_timeout`, `log_dir` (where the
server's log goes; `prmbench run` sets it to the run folder's logs/, elsewhere the default is a
fresh temporary folder; either way named on stderr), plus the openai
policy's `tokenizer`, `num_parameters`, `max_concurrent_requests`, `timeout` and `retries`.

vLLM and SGLang are optional extras (`pip install 'prmbench[vllm]'` / `'prmbench[sglang]'`).
`transformers serve` comes with `transformers[serving]`; it seeds one global generator per
request, so it is reproducible only one request at a time: its default
`max_concurrent_requests` is 1. It samples only when the model's generation_config.json says
`do_sample: true` (otherwise every request is greedy), and it applies that file's other
settings (top_k, repetition penalty), which the OpenAI API cannot override.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, ClassVar

from prmbench.errors import ConfigError
from prmbench.policies.launcher import (ManagedServer, ServerCommand, free_port, sglang_command,
                                        transformers_serve_command, vllm_command)
from prmbench.policies.openai import OpenAIPolicy


def _check_module(module: str, install: str, kind: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"--policy {kind}:MODEL needs {module}, which is not installed; install it with "
                          f"`pip install '{install}'` (or serve the model yourself and use --policy openai:MODEL "
                          f"--policy-args base_url=http://HOST:PORT/v1)")


class ManagedServerPolicy(OpenAIPolicy):
    """An OpenAIPolicy whose server prmbench starts and stops (see module docstring)."""

    kind: ClassVar[str] = ""
    module: ClassVar[str] = ""
    install: ClassVar[str] = ""
    default_concurrency: ClassVar[int] = 64

    def __init__(self, model: str, seed: int = 0, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, revision: str | None = None,
                 server_args: str = "", startup_timeout: float = 1800.0, log_dir: str | None = None,
                 tokenizer: str | None = None, num_parameters: int | None = None,
                 max_concurrent_requests: int | None = None, timeout: float = 600.0, retries: int = 5,
                 chat_template: bool = True):
        model = str(model).strip()
        if not model:
            raise ConfigError(f"{self.kind} policy needs a model: --policy {self.kind}:HUB_ID_OR_DIR")
        _check_module(self.module, self.install, self.kind)
        try:
            self.server_dtype = str(dtype)
            command = self.build_command(model, free_port(), seed=int(seed), dtype=str(dtype),
                                         tensor_parallel_size=int(tensor_parallel_size),
                                         gpu_memory_utilization=float(gpu_memory_utilization),
                                         max_model_len=int(max_model_len) if max_model_len else None,
                                         revision=revision, extra=shlex.split(str(server_args or "")))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{self.kind} policy: bad server argument ({e})") from None
        folder = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"prmbench-{self.kind}-"))
        self.server = ManagedServer(command, folder / f"{self.kind}-server-{command.port}.log",
                                    startup_timeout=float(startup_timeout))
        print(f"prmbench: starting {self.kind} server for {model} on {command.base_url} "
              f"(log: {self.server.log_path})", file=sys.stderr, flush=True)
        self.server.start()
        try:
            super().__init__(model, base_url=command.base_url, tokenizer=tokenizer, num_parameters=num_parameters,
                             max_concurrent_requests=max_concurrent_requests or self.default_concurrency,
                             timeout=timeout, retries=retries, revision=revision, chat_template=chat_template)
        except BaseException:
            self.server.stop()
            raise

    command_builder: ClassVar[Callable[..., ServerCommand]]

    def build_command(self, model: str, port: int, **kw: Any) -> ServerCommand:
        """The server's command line."""
        return type(self).command_builder(model, port, **kw)

    def config(self) -> dict[str, Any]:
        """The openai policy's identity plus the serving engine and its dtype."""
        return {**super().config(), "server": self.kind, "dtype": self.server_dtype}

    def close(self) -> None:
        """Stop the client, then the server's process group."""
        try:
            super().close()
        finally:
            self.server.stop()


class VLLMPolicy(ManagedServerPolicy):
    """`--policy vllm:MODEL`: a managed `vllm serve` (extra: prmbench[vllm])."""

    kind, module, install = "vllm", "vllm", "prmbench[vllm]"
    command_builder = staticmethod(vllm_command)


class SGLangPolicy(ManagedServerPolicy):
    """`--policy sglang:MODEL`: a managed `python -m sglang.launch_server` (extra: prmbench[sglang])."""

    kind, module, install = "sglang", "sglang", "prmbench[sglang]"
    command_builder = staticmethod(sglang_command)


class TransformersServePolicy(ManagedServerPolicy):
    """`--policy transformers-serve:MODEL`: a managed `transformers serve` (CPU or GPU; one request at a time)."""

    kind, module, install = "transformers-serve", "fastapi", "transformers[serving]"
    default_concurrency = 1

    def build_command(self, model: str, port: int, **kw: Any) -> ServerCommand:
        """`transformers serve MODEL`; tensor parallelism, memory share and context length do not apply."""
        return transformers_serve_command(model, port, seed=kw["seed"], dtype=kw["dtype"], extra=kw["extra"])
