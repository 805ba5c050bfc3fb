"""Command lines that start a worker under each isolation level.

* "bwrap": bubblewrap with private pid/net/ipc/uts (and cgroup) namespaces, a tmpfs root
  holding only read-only binds of what the interpreter needs (/usr, /lib*, the interpreter
  prefix and site-packages), a private size-capped /tmp, a new session, --die-with-parent
  and the worker as pid 1 of its pid namespace. As root, bwrap runs without a user
  namespace (a user namespace made by root maps the sandbox uid back to host root) and the
  worker drops to a dedicated non-root uid/gid before running anything; bwrap leaves it
  only CAP_SETUID/CAP_SETGID/CAP_SETPCAP for that, and they are gone after the drop. As a
  normal user, bwrap makes a user namespace (--unshare-all) and drops all capabilities.
* "unshare+uid" (root only): util-linux ``unshare`` with private pid/net/ipc/uts/mount
  namespaces and a fresh /proc; the worker mounts a private tmpfs on /tmp and drops to the
  dedicated uid. The host filesystem stays visible, guarded by ordinary permissions.
* "rlimits" (weak): a plain process in a new session with rlimits, dropped to the
  dedicated uid when started as root. No filesystem or network isolation.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
from pathlib import Path

from prmbench.sandbox import worker as _worker

#: Size of the private /tmp of each worker slot (tmpfs, in MiB).
TMP_SIZE_MB = 256


def worker_source() -> str:
    """The worker's source code, passed to the interpreter with ``-c``."""
    return Path(_worker.__file__).read_text(encoding="utf-8")


def _python_cmd(python: str) -> list[str]:
    """The interpreter command line that runs the worker."""
    # -I: ignore PYTHON* variables and the user site; -B: no .pyc writes.
    return [python, "-I", "-B", "-c", worker_source()]


def _interpreter_paths(python: str) -> list[str]:
    """Directories the interpreter needs, beyond /usr and /lib*: its prefixes and site-packages."""
    paths: list[str] = []
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        paths += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
        paths += [p for p in site.getsitepackages() if os.path.isdir(p)]
    exe = Path(python)
    paths.append(str(exe.parent.parent))  # <prefix>/bin/python -> <prefix>
    paths.append(str(Path(os.path.realpath(python)).parent.parent))
    return paths


def _covered(path: str, binds: list[str]) -> bool:
    """Whether `path` is one of `binds` or lies under one."""
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in binds)


def bwrap_command(python: str, as_root: bool, uid: int) -> list[str]:
    """The bwrap command line for a worker slot (see the module docstring)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bubblewrap is not installed (no `bwrap` on PATH)")
    cmd = [bwrap]
    if as_root:
        cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        cmd += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            cmd += ["--cap-add", cap]
    else:
        cmd += ["--unshare-all", "--cap-drop", "ALL"]
    cmd += ["--die-with-parent", "--new-session", "--as-pid-1", "--clearenv"]
    cmd += ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    cmd += ["--setenv", "HOME", "/tmp"]

    binds: list[str] = []
    cmd += ["--ro-bind", "/usr", "/usr"]
    binds.append("/usr")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = f"/{name}"
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
            binds.append(top)
    cmd += ["--perms", "0755", "--dir", "/etc"]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(etc):
            cmd += ["--ro-bind", etc, etc]

    made_dirs: set[str] = set()
    for raw in _interpreter_paths(python):
        for path in dict.fromkeys([raw, os.path.realpath(raw)]):
            if not os.path.isdir(path) or _covered(path, binds) or path == "/":
                continue
            # Parents are created 0755 inside (bwrap would copy a host 0700 /root, say).
            parent = Path(path).parent
            chain = []
            while str(parent) != "/":
                chain.append(str(parent))
                parent = parent.parent
            for d in reversed(chain):
                if d not in made_dirs and not _covered(d, binds):
                    cmd += ["--perms", "0755", "--dir", d]
                    made_dirs.add(d)
            cmd += ["--ro-bind", os.path.realpath(path), path]
            binds.append(path)

    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--perms", "1777", "--size", str(TMP_SIZE_MB * 1024 * 1024), "--tmpfs", "/tmp"]
    cmd += ["--chdir", "/tmp", "--"]
    cmd += _python_cmd(python) + ["--private-tmp"]
    if as_root:
        cmd += ["--drop-uid", str(uid), "--drop-gid", str(uid)]
    return cmd


def unshare_command(python: str, uid: int) -> list[str]:
    """The ``unshare`` command line for a worker slot (root only)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise FileNotFoundError("util-linux `unshare` is not on PATH")
    cmd = [unshare, "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc", "--net", "--ipc", "--uts"]
    cmd += ["--mount", "--propagation", "private", "--"]
    cmd += _python_cmd(python)
    cmd += ["--private-tmp", "--mount-tmp", str(TMP_SIZE_MB), "--drop-uid", str(uid), "--drop-gid", str(uid)]
    return cmd


def rlimits_command(python: str, as_root: bool, uid: int) -> list[str]:
    """The plain command line for a worker slot (weak: resource limits only)."""
    cmd = _python_cmd(python)
    if as_root:
        cmd += ["--drop-uid", str(uid), "--drop-gid", str(uid)]
    return cmd


def worker_command(level: str, python: str, uid: int) -> list[str]:
    """The command that starts a worker for `level` whose programs run as `uid` (if root)."""
    as_root = os.geteuid() == 0
    if level == "bwrap":
        return bwrap_command(python, as_root, uid)
    if level == "unshare+uid":
        if not as_root:
            raise PermissionError("isolation 'unshare+uid' needs root (to switch to a sandbox uid)")
        return unshare_command(python, uid)
    if level == "rlimits":
        return rlimits_command(python, as_root, uid)
    raise ValueError(level)
