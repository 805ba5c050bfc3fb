"""The managed-server launcher: a real `transformers serve` process group started and stopped
(at close and on Ctrl-C of a running `prmbench run`), servers that fail to start (log tail in
the error), and the exact vLLM / SGLang command lines with their missing-extra errors."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from prmbench.errors import ConfigError, ModelLoadError
from prmbench.plugins import build_registry
from prmbench.policies.launcher import (ManagedServer, ServerCommand, free_port, sglang_command,
                                        transformers_serve_command, vllm_command)
from prmbench.types import GenRequest, Message
from serving_support import group_exists, needs_serve, prmbench_cmd, sampling_model_dir


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _server_pids(port: int) -> list[int]:
    """Pids of live processes whose command line names `port` after --port."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
                state = (d / "stat").read_text().split(") ")[-1][0]
            except OSError:
                continue
            if b"--port" in argv and str(port).encode() in argv and state != "Z":
                out.append(int(d.name))
    return out


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sampling_model_dir(tiny_model_dir, tmp_path_factory.mktemp("served") / "model")


# -- real lifecycle ------------------------------------------------------------------------------
@needs_serve
@pytest.mark.slow
def test_transformers_serve_policy_starts_serves_and_stops_its_group(model_dir, tmp_path):
    reg = build_registry()
    pol = reg.build("policy", f"transformers-serve:{model_dir}", {"dtype": "float32", "log_dir": str(tmp_path)})
    pgid, url = pol.server.pgid, pol.server.command.health_url
    try:
        assert group_exists(pgid) and _answers(url)
        assert os.getpgid(pgid) == pgid != os.getpgid(0)  # its own process group
        gens = pol.generate([GenRequest(messages=(Message("user", "hi"),), n=2, max_tokens=4, seed=1)])[0]
        assert [g.seed for g in gens] == [1, 2] and all(1 <= g.completion_tokens <= 4 for g in gens)
        assert pol.config()["server"] == "transformers-serve"
    finally:
        pol.close()
    assert not group_exists(pgid) and not _answers(url)
    log = pol.server.log_path
    assert log.parent == tmp_path and "POST /v1/completions" in log.read_text()
    pol.close()  # idempotent


@needs_serve
@pytest.mark.slow
def test_ctrl_c_stops_the_server_group(model_dir, tmp_path):
    """SIGINT to a running `prmbench run` (as Ctrl-C sends it) ends the run and the server; the
    server's log is in the run folder (logs/) without any log_dir argument."""
    proc = subprocess.Popen(
        prmbench_cmd("run", "--tasks", "math500", "--policy", f"transformers-serve:{model_dir}",
                     "--policy-args", "dtype=float32", "--rm", "oracle",
                     "--strategy", "best_of_n", "--budget", "4", "--limit", "50", "--max-tokens", "64",
                     "--output", str(tmp_path / "run")),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    port = None
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the policy names its server's address on stderr
            m = re.search(r"server for .* on http://127\.0\.0\.1:(\d+)/v1", line)
            if m:
                port = int(m.group(1))
                break
        assert port is not None, "the launcher never announced its server"
        log_dir = tmp_path / "run" / "logs"
        logs = list(log_dir.glob(f"transformers-serve-server-{port}.log"))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (logs and "POST /v1/completions" in logs[0].read_text()):
            time.sleep(0.2)
            logs = list(log_dir.glob(f"transformers-serve-server-{port}.log"))
        assert logs, f"no server log in {log_dir}"
        assert _server_pids(port), "no server process found"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert not _server_pids(port)
    assert not _answers(f"http://127.0.0.1:{port}/health")


@needs_serve
@pytest.mark.slow
def test_server_that_fails_to_start_reports_its_log_tail(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no_such_architecture"}')
    cmd = transformers_serve_command(str(broken), free_port(), device="cpu")
    server = ManagedServer(cmd, tmp_path / "serve.log", startup_timeout=240)
    with pytest.raises(ModelLoadError) as e:
        server.start()
    msg = str(e.value)
    assert "exited with status" in msg and str(tmp_path / "serve.log") in msg
    last = (tmp_path / "serve.log").read_text().strip().splitlines()[-1]
    assert "Error" in last and last.strip() in msg  # the server's own complaint, quoted from its log
    assert server.process is None


def test_startup_timeout_stops_the_group(tmp_path):
    """A server that never answers is stopped, children included, after startup_timeout."""
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
             "print('loading weights...', flush=True); time.sleep(60)"
    cmd = ServerCommand("fake", (sys.executable, "-c", script), free_port())
    server = ManagedServer(cmd, tmp_path / "s.log", startup_timeout=3, stop_grace=2)
    t0 = time.monotonic()
    with pytest.raises(ModelLoadError) as e:
        server.start()
    assert "did not answer" in str(e.value) and "loading weights..." in str(e.value)
    assert time.monotonic() - t0 < 30
    leftovers = subprocess.run(["pgrep", "-f", "time.sleep\\(60\\)"], capture_output=True, text=True).stdout.split()
    assert not [p for p in leftovers if int(p) != os.getpid()]


# -- command lines and extras --------------------------------------------------------------------
def test_vllm_command_line():
    cmd = vllm_command("Qwen/Qwen2.5-Coder-7B-Instruct", 4321, seed=7, dtype="bfloat16", tensor_parallel_size=2,
                       gpu_memory_utilization=0.85, revision="r1", max_model_len=4096, extra=["--max-num-seqs", "256"])
    argv = list(cmd.argv)
    assert argv[:3] == ["vllm", "serve", "Qwen/Qwen2.5-Coder-7B-Instruct"]
    pairs = {argv[i]: argv[i + 1] for i in range(3, len(argv) - 1) if argv[i].startswith("--")}
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == "4321" and pairs["--seed"] == "7"
    assert pairs["--dtype"] == "bfloat16" and pairs["--tensor-parallel-size"] == "2"
    assert pairs["--gpu-memory-utilization"] == "0.85" and pairs["--revision"] == "r1"
    assert pairs["--max-model-len"] == "4096" and pairs["--generation-config"] == "vllm"
    assert "--enable-prefix-caching" in argv and argv[-2:] == ["--max-num-seqs", "256"]
    assert cmd.base_url == "http://127.0.0.1:4321/v1" and cmd.health_url == "http://127.0.0.1:4321/health"


def test_sglang_command_line():
    cmd = sglang_command("/models/coder", 5555, seed=3, dtype="float16", tensor_parallel_size=4,
                         gpu_memory_utilization=0.7, max_model_len=8192)
    argv = list(cmd.argv)
    assert argv[:3] == [sys.executable, "-m", "sglang.launch_server"]
    pairs = {argv[i]: argv[i + 1] for i in range(3, len(argv) - 1) if argv[i].startswith("--")}
    assert pairs["--model-path"] == "/models/coder" and pairs["--port"] == "5555" and pairs["--host"] == "127.0.0.1"
    assert pairs["--random-seed"] == "3" and pairs["--dtype"] == "float16" and pairs["--tp-size"] == "4"
    assert pairs["--mem-fraction-static"] == "0.7" and pairs["--context-length"] == "8192"
    assert pairs["--sampling-defaults"] == "openai"
    assert "--disable-radix-cache" not in argv  # prefix caching stays on


@pytest.mark.parametrize("kind,module,extra", [("vllm", "vllm", "prmbench[vllm]"), ("sglang", "sglang", "prmbench[sglang]")])
def test_missing_extra_names_it(kind, module, extra):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(ConfigError) as e:
        build_registry().build("policy", f"{kind}:Qwen/Qwen2.5-Coder-7B-Instruct")
    assert f"pip install '{extra}'" in str(e.value)


def test_cli_missing_extra_exits_2(tmp_path):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    proc = subprocess.run(prmbench_cmd("run", "--tasks", "math500", "--policy", "vllm:Qwen/Qwen2.5-Coder-7B-Instruct",
                                       "--rm", "oracle", "--strategy", "best_of_n", "--budget", "1", "--limit", "1",
                                       "--output", str(tmp_path / "run")), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "prmbench[vllm]" in proc.stderr and "Traceback" not in proc.stderr
