"""Shared by the sandbox test modules: whether bubblewrap can run here."""

from __future__ import annotations

import shutil
import subprocess

def bwrap_skip_reason() -> str | None:
    """Why bwrap is genuinely unavailable here (not installed, or no namespaces at all)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install -y bubblewrap)"
    probe = subprocess.run(
        ["bwrap", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces on this machine: {probe.stderr.strip()}"
    return None


BWRAP_SKIP = bwrap_skip_reason()
