"""Shared by the sandbox test modules: whether bubblewrap can run here, and a leftover-process check."""

from __future__ import annotations

import os
import shutil
import subprocess

from prmbench.sandbox import slot as slot_mod

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


def assert_no_processes_of(uids: list[int]) -> None:
    """After close: nothing runs under these uids (unless another sandbox took one since)."""
    import fcntl

    for uid in uids:
        fd = os.open(os.path.join(slot_mod._lock_dir(), f"{uid}.lock"), os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # reserved again by a sandbox in another process: not ours to judge
            assert slot_mod.processes_of_uid(uid) == [], f"processes left under uid {uid}"
        finally:
            os.close(fd)
