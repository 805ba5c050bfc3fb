"""Provenance of a run: software versions, the prmbench source revision and the hardware.

Written to run.json (`versions`, `git`, `hardware`) so a result can be traced to what produced
it; seconds budgets in particular only compare on the same hardware.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from prmbench import __version__

PACKAGES = ("torch", "transformers", "datasets", "math-verify", "pluggy", "numpy", "vllm")
"""Packages whose versions are recorded (None when not installed)."""


def provenance() -> dict[str, Any]:
    """run.json's `versions`, `git` and `hardware` entries."""
    return {"versions": versions(), "git": git_revision(), "hardware": hardware()}


def versions() -> dict[str, str | None]:
    """Python, prmbench and the recorded packages' versions."""
    import importlib.metadata as md

    out: dict[str, str | None] = {"python": platform.python_version(), "prmbench": __version__}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def git_revision() -> dict[str, Any]:
    """The prmbench checkout's commit and whether tracked files differ from it (None outside git)."""
    src = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return {"revision": None}
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None}


def hardware() -> dict[str, Any]:
    """Platform, CPU model and count, memory and CUDA devices (best effort)."""
    hw: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                          "cpu": cpu_model(), "cpu_count": os.cpu_count()}
    try:
        hw["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import torch

        hw["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # torch missing or broken CUDA: hardware info is best effort
        hw["cuda"] = []
    return hw


def cpu_model() -> str | None:
    """The CPU model name (Linux /proc/cpuinfo; else platform.processor()), for seconds budgets."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
