"""Host side of one worker slot: start the worker, send runs, enforce the outer deadline.

A slot owns one long-lived worker process (see `prmbench.sandbox.worker`) and, when the
host runs as root, one dedicated uid/gid (65000 + n) that nothing else on the machine
uses: the uid is reserved with a lock file, so concurrent sandboxes in this or other
processes never share one.
"""

from __future__ import annotations

import base64
import fcntl
import os
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from prmbench.sandbox import isolation
from prmbench.sandbox.types import STATUSES, ExecResult, Limits
from prmbench.sandbox.worker import recv_msg, send_msg

#: First uid/gid used for sandbox slots when running as root.
BASE_UID = 65000
#: How many uids to try when reserving one.
UID_RANGE = 1000
#: Seconds the host waits past the wall limit for the worker's reply before killing the slot.
GRACE_SECONDS = 3.0
#: Seconds allowed for a worker to start and say hello.
START_TIMEOUT = 60.0

_LOCK_DIR = os.path.join(tempfile.gettempdir(), "prmbench-sandbox-uids")

# Workers are started from this single long-lived thread: bwrap --die-with-parent (and
# PR_SET_PDEATHSIG in general) fires when the *thread* that forked it exits, so starting
# one from a short-lived caller thread would kill it when that thread ends.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prmbench-sandbox-spawner")


class SlotStartError(RuntimeError):
    """A worker could not be started or refused to run (the message says why)."""


def reserve_uid() -> tuple[int, int]:
    """Reserve a free sandbox uid; returns (uid, lock fd). Close the fd to release it."""
    os.makedirs(_LOCK_DIR, mode=0o700, exist_ok=True)
    for uid in range(BASE_UID, BASE_UID + UID_RANGE):
        fd = os.open(os.path.join(_LOCK_DIR, f"{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise SlotStartError(f"no free sandbox uid in {BASE_UID}..{BASE_UID + UID_RANGE - 1}")


def processes_of_uid(uid: int, include_zombies: bool = True) -> list[int]:
    """Pids of processes whose real uid is `uid` (from /proc); zombies only if asked."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                zombie = False
                for line in f:
                    if line.startswith("State:"):
                        zombie = line.split()[1] in ("Z", "X")
                    elif line.startswith("Uid:"):
                        if int(line.split()[1]) == uid and (include_zombies or not zombie):
                            pids.append(int(name))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return pids


class WorkerSlot:
    """One worker process under one isolation level.

    Args:
        level: Isolation level ("bwrap", "unshare+uid", "rlimits").
        python: Interpreter that runs inside.
    """

    def __init__(self, level: str, python: str) -> None:
        self.level = level
        self.python = python
        self.dedicated = os.geteuid() == 0
        self.uid: int | None = None
        self._uid_lock = -1
        if self.dedicated:
            self.uid, self._uid_lock = reserve_uid()
        self._proc: subprocess.Popen | None = None
        self._stderr: tempfile._TemporaryFileWrapper | None = None
        self._lock = threading.Lock()
        self.hello: dict = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the worker (if not running) and check its hello. Raises SlotStartError."""
        if self.alive:
            return
        self.kill()
        cmd = isolation.worker_command(self.level, self.python, self.uid if self.uid is not None else 0)
        self._stderr = tempfile.TemporaryFile()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/"}

        def spawn() -> subprocess.Popen:
            return subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                start_new_session=True, env=env, cwd="/", bufsize=0,
            )

        try:
            self._proc = _spawner.submit(spawn).result()
        except OSError as exc:
            raise SlotStartError(f"cannot start {cmd[0]}: {exc}") from exc
        try:
            hello = recv_msg(self._proc.stdout.fileno(), time.monotonic() + START_TIMEOUT, 1 << 20)
        except (TimeoutError, ValueError, OSError) as exc:
            hello = None
            reason = f"no valid hello ({type(exc).__name__}: {exc})"
        else:
            reason = "it exited during startup"
        if hello is None or not hello.get("ok"):
            if hello is not None:
                reason = str(hello.get("error"))
            detail = self._stderr_text()
            self.kill()
            raise SlotStartError(f"{self.level} worker failed: {reason}" + (f"; stderr: {detail}" if detail else ""))
        if hello.get("uid") == 0:
            self.kill()
            raise SlotStartError(f"{self.level} worker runs as uid 0; refusing")
        self.hello = hello

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """Kill the worker and everything it started (its whole namespace / uid).

        As root the slot's uid is ours alone, so every process under it is the worker or a
        leftover: they are killed first (the worker is pid 1 of the sandbox's pid namespace,
        so that tears the namespace down) and bwrap, their parent, then exits and reaps
        them. The worker's process group is killed in any case.
        """
        proc, self._proc = self._proc, None
        if self.dedicated and self.uid is not None:
            self._kill_uid(self.uid)
        if proc is not None:
            try:
                proc.wait(timeout=0.5 if self.dedicated else 0)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.dedicated and self.uid is not None:
            self._kill_uid(self.uid)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @staticmethod
    def _kill_uid(uid: int) -> None:
        """SIGKILL every live process of `uid` until none is left (zombies excepted)."""
        for _ in range(200):
            pids = processes_of_uid(uid, include_zombies=False)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    def close(self) -> None:
        """Kill the worker and release the uid."""
        self.kill()
        if self._uid_lock >= 0:
            os.close(self._uid_lock)
            self._uid_lock = -1

    # ------------------------------------------------------------------ runs

    def run(self, program: str, stdin: str, limits: Limits) -> ExecResult:
        """Run one program in this slot (starting the worker if needed)."""
        with self._lock:
            return self._run(program, stdin, limits)

    def _error(self, message: str, wall: float = 0.0, status: str = "sandbox_error") -> ExecResult:
        return ExecResult(status, None, "", "", wall, self.level, message)

    def _run(self, program: str, stdin: str, limits: Limits) -> ExecResult:
        self.start()
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        start = time.monotonic()
        request = {"program": program, "stdin": stdin, "limits": limits.to_dict()}
        try:
            send_msg(self._proc.stdin.fileno(), request)
        except OSError as exc:
            self.kill()
            return self._error(f"worker not accepting requests: {exc}")
        deadline = start + limits.wall_seconds + GRACE_SECONDS
        max_reply = 4 * limits.max_output_bytes + (1 << 20)
        try:
            reply = recv_msg(self._proc.stdout.fileno(), deadline, max_reply)
        except TimeoutError:
            self.kill()
            return self._error(
                f"no answer within wall limit + {GRACE_SECONDS} s; killed the worker slot",
                time.monotonic() - start, status="timeout",
            )
        except (ValueError, OSError) as exc:
            self.kill()
            return self._error(f"bad reply from worker: {exc}", time.monotonic() - start)
        if reply is None:
            detail = self._stderr_text()
            self.kill()
            return self._error("worker died" + (f": {detail}" if detail else ""), time.monotonic() - start)
        result = self._result(reply, limits, time.monotonic() - start)
        if reply.get("retire") is True:
            self.kill()  # the next run gets a fresh worker (and a fresh /tmp)
        return result

    def _result(self, reply: dict, limits: Limits, host_wall: float) -> ExecResult:
        """Validate a worker reply and turn it into an ExecResult."""
        status = reply.get("status")
        if status not in STATUSES:
            self.kill()
            return self._error(f"worker sent unknown status {status!r}", host_wall)
        exit_code = reply.get("exit_code")
        if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
            exit_code = None
        texts = []
        for key in ("stdout", "stderr"):
            try:
                raw = base64.b64decode(reply.get(key) or "", validate=True)
            except (ValueError, TypeError):
                raw = b""
            texts.append(raw[: limits.max_output_bytes].decode("utf-8", "replace"))
        wall = reply.get("wall_seconds")
        if not isinstance(wall, (int, float)) or not 0 <= wall <= host_wall + 1:
            wall = host_wall
        message = reply.get("message")
        return ExecResult(
            status=status, exit_code=exit_code, stdout=texts[0], stderr=texts[1],
            wall_seconds=float(wall), isolation=self.level,
            message=message[:1000] if isinstance(message, str) else "",
        )
