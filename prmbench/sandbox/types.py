"""Value types of the sandbox: resource `Limits` and the `ExecResult` of one run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from types import MappingProxyType

from prmbench.errors import ConfigError

#: Every status an `ExecResult` can carry.
STATUSES = ("ok", "runtime_error", "timeout", "memory", "output_limit", "sandbox_error")

#: Isolation levels, strongest first. Only "bwrap" hides the host filesystem.
ISOLATION_LEVELS = ("bwrap", "unshare+uid", "rlimits")

#: Levels weaker than "bwrap", used only with ``allow_unsafe=True`` (and a warning), with what
#: they lack: a program under them can read whatever file permissions allow on the host.
WEAK_LEVELS = MappingProxyType({
    "unshare+uid": "private pid/net/ipc namespaces, /tmp and uid, but the host filesystem is visible "
                   "(ordinary file permissions only)",
    "rlimits": "resource limits only, no filesystem or network isolation",
})


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run. All must be positive.

    Attributes:
        wall_seconds: Real time the program may take, enforced by the host, outside the
            sandbox: at the deadline it has the worker kill the program's whole process
            tree (setsid-ed grandchildren included), and it kills the whole worker slot
            (pid namespace and uid) if the worker does not confirm within a few seconds.
        cpu_seconds: CPU time of the program's main process (RLIMIT_CPU, rounded up to whole
            seconds; each forked process has its own budget, the wall deadline covers all).
        memory_mb: Address space per process in MiB (RLIMIT_AS). Exceeding it usually shows
            as ``MemoryError`` and status "memory".
        max_processes: Processes the program may have at once, itself included
            (RLIMIT_NPROC for the slot's dedicated uid).
        max_file_mb: Largest file the program may write, in MiB (RLIMIT_FSIZE).
        max_open_files: File descriptors per process (RLIMIT_NOFILE).
        max_output_bytes: Cap on stdout and on stderr, each. The host keeps at most this
            many bytes of each and has the program killed as soon as either goes past it
            (status "output_limit").
    """

    wall_seconds: float = 10.0
    cpu_seconds: float = 5.0
    memory_mb: int = 1024
    max_processes: int = 16
    max_file_mb: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(
                    f"Limits.{f.name} must be a positive number, got {value!r}. "
                    f"Pass e.g. Limits({f.name}={f.default!r})."
                )
        if self.max_open_files < 8:
            raise ConfigError(
                f"Limits.max_open_files={self.max_open_files} is too small for Python to start; "
                "use at least 8 (default 64)."
            )

    def to_dict(self) -> dict:
        """The limits as a plain dict (the worker's wire format)."""
        return asdict(self)


@dataclass(frozen=True)
class ExecResult:
    """Outcome of running one program.

    Attributes:
        status: "ok" (exit code 0), "runtime_error" (non-zero exit or killed by a signal),
            "timeout" (wall or CPU limit), "memory" (MemoryError under the address-space
            limit), "output_limit" (stdout or stderr went past ``max_output_bytes``) or
            "sandbox_error" (the sandbox itself failed; the program's fate is unknown).
        exit_code: The program's exit status; ``-N`` when killed by signal N; None when the
            sandbox killed it (timeout, output limit) or never learned it.
        stdout: What the program wrote to stdout (UTF-8, invalid bytes replaced), at most
            ``max_output_bytes`` bytes of it.
        stderr: Likewise for stderr (tracebacks land here).
        wall_seconds: Real time the program ran.
        isolation: The isolation level it actually ran under ("bwrap", "unshare+uid",
            "rlimits").
        message: For statuses other than "ok"/"runtime_error", a short explanation.
    """

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_seconds: float
    isolation: str
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the program exited with status 0 within all limits."""
        return self.status == "ok"
