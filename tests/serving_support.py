"""Shared by the serving tests: a tiny model folder that `transformers serve` samples from, and
helpers that start that real server on a free loopback port (through prmbench's launcher)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from prmbench.policies.launcher import ManagedServer, free_port, transformers_serve_command

SERVE_SKIP = None
try:  # transformers[serving] is in the dev extra; say so when it is missing
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        SERVE_SKIP = "transformers[serving] is not installed (pip install 'prmbench[dev]')"
except ImportError:  # pragma: no cover - transformers is a core dependency
    SERVE_SKIP = "transformers is not installed"

needs_serve = pytest.mark.skipif(SERVE_SKIP is not None, reason=SERVE_SKIP or "")


def sampling_model_dir(src: Path, dst: Path) -> Path:
    """A copy of the tiny model whose generation_config.json says do_sample=true (as real chat
    models ship it): `transformers serve` samples only then; the hf backend ignores the flag."""
    shutil.copytree(src, dst)
    path = dst / "generation_config.json"
    gen = json.loads(path.read_text())
    gen["do_sample"] = True
    path.write_text(json.dumps(gen, indent=2))
    return dst


def start_transformers_serve(model_dir: Path, log_dir: Path, port: int | None = None) -> ManagedServer:
    """Start `transformers serve MODEL_DIR` on CPU (float32, one thread) and wait until it answers."""
    cmd = transformers_serve_command(str(model_dir), port or free_port(), dtype="float32", device="cpu")
    server = ManagedServer(cmd, log_dir / f"serve-{cmd.port}.log", startup_timeout=240,
                           env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    return server.start()


def group_exists(pgid: int) -> bool:
    """Whether any process of the process group `pgid` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def prmbench_cmd(*args: str) -> list[str]:
    """The prmbench CLI run through this interpreter."""
    return [sys.executable, "-m", "prmbench", *args]
