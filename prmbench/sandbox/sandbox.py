"""`Sandbox`: choose an isolation level, keep a pool of worker slots, run programs."""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

from prmbench.errors import ConfigError
from prmbench.sandbox.isolation import sandbox_layout
from prmbench.sandbox.layout import LayoutError
from prmbench.sandbox.slot import SlotStartError, WorkerSlot
from prmbench.sandbox.types import ISOLATION_LEVELS, WEAK_LEVELS, ExecResult, Limits

_probe_cache: dict[tuple[str, str, tuple[str, ...]], str | None] = {}
_probe_lock = threading.Lock()

_HOW_TO_FIX = (
    "Install bubblewrap (`apt-get install -y bubblewrap`; scripts/setup.sh does this) and make "
    "sure namespaces are allowed (in a container: run it with --privileged or a seccomp profile "
    "that permits unshare/mount), or pass allow_unsafe=True to accept a weak level ('unshare+uid': "
    "the host filesystem stays visible; 'rlimits': resource limits only)."
)


def probe_level(level: str, python: str, packages: tuple[str, ...] = ()) -> str | None:
    """Check that `level` works here by starting a worker and running a tiny program.

    Returns None when it works, else the reason it does not. Results are cached per
    (level, interpreter, packages) for the life of the process.
    """
    key = (level, os.path.realpath(python), tuple(packages))
    with _probe_lock:
        if key in _probe_cache:
            return _probe_cache[key]
        slot = None
        try:
            slot = WorkerSlot(level, python, packages)
            result = slot.run("import os, sys\nprint(os.getuid(), sys.stdin.read())", "probe", Limits(wall_seconds=30))
            if result.status != "ok" or not result.stdout.endswith("probe\n"):
                reason: str | None = f"test program got status {result.status!r}: {result.message} {result.stderr[-500:]}"
            elif result.stdout.split()[0] == "0":
                reason = "test program ran as uid 0"
            else:
                reason = None
        except (SlotStartError, OSError, ValueError) as exc:
            reason = str(exc)
        finally:
            if slot is not None:
                slot.close()
        _probe_cache[key] = reason
        return reason


_PACKAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _usable_cpus() -> int:
    """CPU cores this process may run on (respects affinity masks, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Sandbox:
    """Runs untrusted Python programs, each in a fresh child process under isolation.

    Args:
        isolation: "auto" ("bwrap", the one level that hides the host filesystem; then - only
            with ``allow_unsafe`` - the weak "unshare+uid" and "rlimits") or one level by name,
            which must work or the constructor raises ConfigError (a weak one also needs
            ``allow_unsafe``). The level used is in `self.isolation` and on every
            `ExecResult`; it never changes silently, and a weak level (`self.weak`) also
            emits a RuntimeWarning saying what it lacks.
        workers: Number of worker slots, i.e. programs that can run at once (default: one
            per CPU core this process may use). Each slot is a long-lived worker process,
            started on first use, that forks a fresh child per program; as root each slot
            runs programs under its own non-root uid/gid (65000 and up).
        allow_unsafe: Permit the weak levels ("unshare+uid": the host filesystem is visible;
            "rlimits": no filesystem or network isolation).
        python: Interpreter to run programs with (default: this one, ``sys.executable``).
            Under "bwrap" its base interpreter runs (a venv's own files stay outside), with
            the standard library only: no site-packages of any prefix is readable inside.
        packages: Top-level names of installed packages (e.g. ``("numpy",)``) a task
            explicitly allows; each is found as `python` would import it and bound on its
            own (with its ``<name>.libs`` directory of vendored libraries, if any). List
            their dependencies too. Unknown packages raise ConfigError.

    `run` is thread-safe: call it from several threads (or use `run_many`) to use all slots.
    Use as a context manager or call `close()` to stop the workers.
    """

    def __init__(
        self,
        isolation: str = "auto",
        workers: int | None = None,
        allow_unsafe: bool = False,
        python: str | None = None,
        packages: Sequence[str] = (),
    ) -> None:
        if isolation != "auto" and isolation not in ISOLATION_LEVELS:
            raise ConfigError(
                f"unknown sandbox isolation {isolation!r}; use 'auto' or one of {', '.join(ISOLATION_LEVELS)}."
            )
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"Sandbox workers must be a positive integer or None, got {workers!r}.")
        if isinstance(packages, str) or not all(isinstance(p, str) and _PACKAGE_NAME.fullmatch(p) for p in packages):
            raise ConfigError(f"Sandbox packages must be top-level module names such as ('numpy',), got {packages!r}.")
        self.python = python or sys.executable
        self.packages = tuple(packages)
        self.allow_unsafe = allow_unsafe
        if isolation in ("auto", "bwrap"):
            try:
                sandbox_layout(self.python, self.packages)
            except LayoutError as exc:
                raise ConfigError(f"{exc}. Install it into the environment of {self.python} or drop it "
                                  "from the sandbox's packages.") from exc
        self.isolation = self._choose(isolation)
        if self.weak:
            warnings.warn(
                f"prmbench sandbox runs untrusted programs under the weak {self.isolation!r} level: "
                f"{WEAK_LEVELS[self.isolation]}.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.workers = workers or _usable_cpus()
        self._slots = [WorkerSlot(self.isolation, self.python, self.packages) for _ in range(self.workers)]
        self._free: queue.SimpleQueue[WorkerSlot] = queue.SimpleQueue()
        for slot in self._slots:
            self._free.put(slot)
        self._closed = False

    @property
    def weak(self) -> bool:
        """True when the chosen level is weaker than "bwrap" (see `WEAK_LEVELS`)."""
        return self.isolation in WEAK_LEVELS

    @property
    def uids(self) -> list[int]:
        """The dedicated uids of the slots (empty when not running as root)."""
        return [slot.uid for slot in self._slots if slot.uid is not None]

    def _choose(self, requested: str) -> str:
        """Pick the isolation level (see the class docstring); raise ConfigError if none."""
        if requested != "auto":
            if requested in WEAK_LEVELS and not self.allow_unsafe:
                raise ConfigError(
                    f"isolation {requested!r} is weak ({WEAK_LEVELS[requested]}); pass allow_unsafe=True to use it."
                )
            reason = probe_level(requested, self.python, self.packages)
            if reason is not None:
                raise ConfigError(f"sandbox isolation {requested!r} is not usable here: {reason}. {_HOW_TO_FIX}")
            return requested
        reasons = []
        for level in ISOLATION_LEVELS:
            if level in WEAK_LEVELS and not self.allow_unsafe:
                continue
            reason = probe_level(level, self.python, self.packages)
            if reason is None:
                return level
            reasons.append(f"{level}: {reason}")
        tried = "; ".join(reasons) if reasons else "none"
        raise ConfigError(f"no usable sandbox isolation (tried {tried}). {_HOW_TO_FIX}")

    def run(self, program: str, stdin: str = "", limits: Limits = Limits(), trusted: bool = False) -> ExecResult:
        """Run Python source `program` with `stdin` under `limits` and return its result.

        The program runs in a fresh child process (forked from the slot's worker) as
        ``__main__``, with its stdin/stdout/stderr on pipes and its working directory (and
        $HOME, $TMPDIR) on a private, emptied-after-each-run /tmp. Every process it starts is
        killed when it exits or hits a limit. Never raises for anything the program does;
        failures of the sandbox itself come back as status "sandbox_error".

        `trusted=True` says `program` is the caller's own code (such as the code judge's
        driver, which then runs untrusted code under its own guard), not untrusted input: the
        worker compiles it once and every later run of it skips compilation. Never pass
        untrusted source as trusted: it would be compiled in the worker, outside the child's
        limits.
        """
        if self._closed:
            raise ConfigError("this Sandbox is closed; create a new one.")
        if not isinstance(program, str) or not isinstance(stdin, str):
            raise ConfigError(
                f"Sandbox.run takes program and stdin as str, got {type(program).__name__} and {type(stdin).__name__}."
            )
        if not isinstance(limits, Limits):
            raise ConfigError(f"limits must be a prmbench.sandbox.Limits, got {type(limits).__name__}.")
        slot = self._free.get()
        try:
            try:
                return slot.run(program, stdin, limits, trusted)
            except SlotStartError as exc:
                return ExecResult("sandbox_error", None, "", "", 0.0, self.isolation, str(exc)[:1000])
        finally:
            self._free.put(slot)

    def run_many(
        self, programs: Sequence[str], stdins: Iterable[str] | None = None, limits: Limits = Limits()
    ) -> list[ExecResult]:
        """Run several programs in parallel on all slots; results in input order."""
        stdin_list = list(stdins) if stdins is not None else [""] * len(programs)
        if len(stdin_list) != len(programs):
            raise ConfigError(f"run_many got {len(programs)} programs but {len(stdin_list)} stdins.")
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(lambda ps: self.run(ps[0], ps[1], limits), zip(programs, stdin_list)))

    def close(self) -> None:
        """Stop all workers and kill anything they left running. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            slot.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
