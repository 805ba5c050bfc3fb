"""Command lines that start a worker under each isolation level.

* "bwrap": bubblewrap with private pid/net/ipc/uts (and cgroup) namespaces and a tmpfs root
  holding only read-only binds of what the interpreter needs: /usr and /lib*, a few files of
  /etc, and the base interpreter's executable, standard library and shared libraries at their
  real paths (`prmbench.sandbox.layout`; a venv's ``python`` is never run, so a venv anywhere,
  /tmp included, needs nothing inside). Every site-packages/dist-packages directory inside
  those binds is covered by an empty read-only tmpfs: no installed package (benchmark data,
  prmbench itself, caches) is readable; packages the caller allows are bound one by one under
  `PACKAGES_DIR`. Then a private size-capped /tmp (interpreter paths that live under /tmp are
  bound again on top of it and left alone by the worker's wipe), the root read-only, a new session,
  --die-with-parent and the worker as pid 1 of its pid namespace. The worker's own code comes
  on its command line, not from a file. As root, bwrap runs without a user namespace (a user
  namespace made by root maps the sandbox uid back to host root) and the worker drops to a
  dedicated non-root uid/gid before running anything; bwrap leaves it only
  CAP_SETUID/CAP_SETGID/CAP_SETPCAP for that, and they are gone after the drop. As a normal
  user, bwrap makes a user namespace (--unshare-all) and drops all capabilities.
* "unshare+uid" (weak, root only): util-linux ``unshare`` with private pid/net/ipc/uts/mount
  namespaces and a fresh /proc; the worker mounts a private tmpfs on /tmp and drops to the
  dedicated uid. The host filesystem stays visible, guarded by ordinary permissions only.
* "rlimits" (weak): a plain process in a new session with rlimits, dropped to the
  dedicated uid when started as root. No filesystem or network isolation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prmbench.sandbox import worker as _worker
from prmbench.sandbox.layout import InterpreterLayout, inside, inspect_interpreter

#: Size of the private /tmp of each worker slot (tmpfs, in MiB).
TMP_SIZE_MB = 256

#: In-sandbox directory holding the explicitly allowed packages (appended to ``sys.path``).
PACKAGES_DIR = "/opt/sandbox-site"

#: Top-level system directories bound read-only (or re-created as the same symlinks).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

#: Files of /etc the dynamic loader and the time functions read.
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")


def worker_source() -> str:
    """The worker's source code, passed to the interpreter with ``-c``."""
    return Path(_worker.__file__).read_text(encoding="utf-8")


def _python_cmd(python: str) -> list[str]:
    """The interpreter command line that runs the worker."""
    # -I: ignore PYTHON* variables and the user site; -B: no .pyc writes.
    return [python, "-I", "-B", "-c", worker_source()]


def system_roots() -> tuple[str, ...]:
    """The system directories that exist here as real directories (bound as a whole)."""
    return tuple(d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d))


def sandbox_layout(python: str, packages: tuple[str, ...] = ()) -> InterpreterLayout:
    """The interpreter layout the bwrap level binds for `python` (see `prmbench.sandbox.layout`)."""
    return inspect_interpreter(python, packages, system_roots())


class _Mounts:
    """The bwrap mount arguments, with parent directories made 0755 inside (bwrap would copy
    a host 0700 /root, say, and the dropped uid could not pass it)."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self._dirs: set[str] = set()
        self._binds: list[str] = []

    def dirs_to(self, path: str) -> None:
        """Create the parents of `path` that are not already there."""
        chain = []
        parent = Path(path).parent
        while str(parent) != "/":
            chain.append(str(parent))
            parent = parent.parent
        for d in reversed(chain):
            if d not in self._dirs and not inside(d, self._binds):
                self.args += ["--perms", "0755", "--dir", d]
                self._dirs.add(d)

    def made(self, path: str) -> None:
        """Record that `path` exists inside (a mount point made by hand)."""
        self._dirs.add(path)

    def bind(self, source: str, target: str) -> None:
        """Bind `source` read-only at `target`."""
        self.dirs_to(target)
        self.args += ["--ro-bind", source, target]
        self._binds.append(target)

    def hide(self, path: str) -> None:
        """Cover the directory `path` with an empty read-only tmpfs."""
        self.args += ["--perms", "0555", "--size", "4096", "--tmpfs", path, "--remount-ro", path]


def bwrap_command(python: str, as_root: bool, uid: int, packages: tuple[str, ...] = ()) -> list[str]:
    """The bwrap command line for a worker slot (see the module docstring)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bubblewrap is not installed (no `bwrap` on PATH)")
    layout = sandbox_layout(python, packages)
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

    m = _Mounts()
    for top in SYSTEM_DIRS:
        if os.path.islink(top):
            m.args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            m.bind(top, top)
    m.args += ["--perms", "0755", "--dir", "/etc"]
    m.made("/etc")
    for etc in ETC_FILES:
        if os.path.exists(etc):
            m.bind(etc, etc)
    # Paths under /tmp are bound after the private /tmp is mounted, or it would hide them.
    in_tmp = [p for p in layout.read_only if inside(p, ["/tmp"])]
    for path in layout.read_only:
        if path not in in_tmp:
            m.bind(path, path)
    for name, source in layout.packages:
        m.bind(source, f"{PACKAGES_DIR}/{name}")
    for path in layout.hidden:
        if not inside(path, ["/tmp"]):
            m.hide(path)
    m.args += ["--proc", "/proc", "--dev", "/dev"]
    m.args += ["--perms", "1777", "--size", str(TMP_SIZE_MB * 1024 * 1024), "--tmpfs", "/tmp"]
    m.made("/tmp")
    for path in in_tmp:
        m.bind(path, path)
    for path in layout.hidden:
        if inside(path, ["/tmp"]):
            m.hide(path)
    # The root tmpfs (and what bwrap made in it: /etc, /opt, mount-point parents) read-only, so
    # nothing a program writes outside /tmp survives into the next run, even as a normal user.
    m.args += ["--remount-ro", "/"]
    cmd += m.args
    cmd += ["--chdir", "/tmp", "--"]
    cmd += _python_cmd(layout.executable) + ["--private-tmp"]
    for path in in_tmp:
        cmd += ["--keep", path]
    if layout.packages:
        cmd += ["--site", PACKAGES_DIR]
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


def worker_command(level: str, python: str, uid: int, packages: tuple[str, ...] = ()) -> list[str]:
    """The command that starts a worker for `level` whose programs run as `uid` (if root).

    `packages` are made importable under "bwrap" (the weak levels see the host's anyway)."""
    as_root = os.geteuid() == 0
    if level == "bwrap":
        return bwrap_command(python, as_root, uid, packages)
    if level == "unshare+uid":
        if not as_root:
            raise PermissionError("isolation 'unshare+uid' needs root (to switch to a sandbox uid)")
        return unshare_command(python, uid)
    if level == "rlimits":
        return rlimits_command(python, as_root, uid)
    raise ValueError(level)
