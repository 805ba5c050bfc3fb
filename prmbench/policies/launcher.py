"""Start an OpenAI-compatible server as a subprocess, wait until it answers, stop it for sure.

`ManagedServer` runs one command line in its own process group (its own session, so a Ctrl-C
typed at prmbench does not reach it half-way: prmbench stops it itself), with stdout and
stderr going to a log file. `start()` polls the health URL until it answers 200; when the
process exits first, or `startup_timeout` passes, the group is stopped and the error quotes the
log's last lines. `stop()` sends SIGTERM to the whole group, then SIGKILL after a grace period;
it runs at `close()`, on Ctrl-C or a crash (through the runner's `finally`), at interpreter exit,
and, on Linux, the server's leader also gets SIGTERM when prmbench dies (PR_SET_PDEATHSIG).

The command builders (`vllm_command`, `sglang_command`, `transformers_serve_command`) write the
exact command lines of `vllm serve`, `python -m sglang.launch_server` and `transformers serve`.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

from prmbench.errors import ModelLoadError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ("" when unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass(frozen=True)
class ServerCommand:
    """What to run and where it will answer."""

    kind: str
    argv: tuple[str, ...]
    port: int
    health_path: str = "/health"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root, ending in /v1."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def health_url(self) -> str:
        """The URL polled until the server is ready."""
        return f"http://{LOOPBACK}:{self.port}{self.health_path}"


def vllm_command(model: str, port: int, *, seed: int = 0, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, revision: str | None = None,
                 max_model_len: int | None = None, extra: Sequence[str] = ()) -> ServerCommand:
    """`vllm serve MODEL` on the loopback port, prefix caching on and the model's
    generation_config.json sampling defaults off (`--generation-config vllm`), so the requests'
    temperature/top_p are the only sampling settings."""
    argv = ["vllm", "serve", model, "--host", LOOPBACK, "--port", str(port), "--seed", str(seed),
            "--dtype", dtype, "--tensor-parallel-size", str(tensor_parallel_size),
            "--gpu-memory-utilization", str(gpu_memory_utilization), "--enable-prefix-caching",
            "--generation-config", "vllm"]
    if revision:
        argv += ["--revision", revision]
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    return ServerCommand("vllm", tuple(argv) + tuple(extra), port)


def sglang_command(model: str, port: int, *, seed: int = 0, dtype: str = "auto", tensor_parallel_size: int = 1,
                   gpu_memory_utilization: float = 0.9, revision: str | None = None,
                   max_model_len: int | None = None, extra: Sequence[str] = ()) -> ServerCommand:
    """`python -m sglang.launch_server --model-path MODEL`; its radix (prefix) cache is on by
    default; `--sampling-defaults openai` keeps the model's generation_config.json out of sampling."""
    argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", model, "--host", LOOPBACK,
            "--port", str(port), "--random-seed", str(seed), "--dtype", dtype, "--tp-size", str(tensor_parallel_size),
            "--mem-fraction-static", str(gpu_memory_utilization), "--sampling-defaults", "openai"]
    if revision:
        argv += ["--revision", revision]
    if max_model_len:
        argv += ["--context-length", str(max_model_len)]
    return ServerCommand("sglang", tuple(argv) + tuple(extra), port)


def transformers_serve_command(model: str, port: int, *, seed: int = 0, dtype: str = "auto", device: str = "auto",
                               extra: Sequence[str] = ()) -> ServerCommand:
    """`transformers serve MODEL` pinned to MODEL (run through this Python's interpreter)."""
    argv = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", LOOPBACK,
            "--port", str(port), "--device", device, "--dtype", dtype, "--default-seed", str(seed)]
    return ServerCommand("transformers-serve", tuple(argv) + tuple(extra), port)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ManagedServer:
    """One server process group with a log file (see module docstring)."""

    def __init__(self, command: ServerCommand, log_path: Path, startup_timeout: float = 900.0,
                 stop_grace: float = 15.0, env: dict[str, str] | None = None):
        self.command = command
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pgid(self) -> int | None:
        """The process group id (the leader's pid), None before start."""
        return self.process.pid if self.process is not None else None

    def start(self) -> "ManagedServer":
        """Launch and wait until healthy; on failure stop everything and raise ModelLoadError."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, **(self.env or {})}
        try:
            self.process = subprocess.Popen(
                list(self.command.argv), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                start_new_session=True, env=env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except OSError as e:
            self._close_log()
            raise ModelLoadError(f"cannot start the {self.command.kind} server ({self.command.argv[0]}: {e})") from None
        atexit.register(self.stop)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.1
        while True:
            code = self.process.poll()
            if code is not None:
                raise self._failed(f"exited with status {code} before it was ready")
            try:
                with urllib.request.urlopen(self.command.health_url, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise self._failed(f"did not answer {self.command.health_url} within {self.startup_timeout:.0f} s")
            time.sleep(delay)
            delay = min(1.0, delay * 1.5)

    def _failed(self, what: str) -> ModelLoadError:
        if self._log is not None:
            self._log.flush()
        tail = log_tail(self.log_path)
        shown = "\n".join("    " + line for line in tail.splitlines()) or "    (empty)"
        return ModelLoadError(f"the {self.command.kind} server {what}; full log: {self.log_path}; its last lines:\n{shown}")

    def alive(self) -> bool:
        """Whether the server's leader process still runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after the grace period."""
        proc = self.process
        if proc is None:
            return
        atexit.unregister(self.stop)
        for sig, wait_s in ((signal.SIGTERM, self.stop_grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(proc.pid):
                break
            # the leader is gone but children linger: give them the grace period, then kill
            end = time.monotonic() + wait_s
            while _group_alive(proc.pid) and time.monotonic() < end:
                time.sleep(0.1)
            if not _group_alive(proc.pid):
                break
        if proc.poll() is None:
            proc.wait(timeout=5)
        self.process = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
