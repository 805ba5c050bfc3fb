"""Host side of one worker slot: start the worker, supervise runs, kill what misbehaves.

A slot owns one long-lived worker process (see `prmbench.sandbox.worker`), connected by a
Unix socket, and, when the host runs as root, one dedicated uid/gid (65000 + n) that
nothing else on the machine uses: the uid is reserved with a lock file (so concurrent
sandboxes in this or other processes never share one) and skipped if any account, group
or process has it.

For each run the host makes four pipes, passes the child's ends to the worker with the
limits, writes the program and stdin, reads stdout/stderr (keeping at most
``max_output_bytes`` of each) and enforces the wall deadline: past it, or past the output
cap, it sends a kill request, and if the worker does not answer within `GRACE_SECONDS` it
kills the whole slot. The worker's reply is validated, never trusted blindly.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import itertools
import os
import pwd
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from prmbench.sandbox import isolation
from prmbench.sandbox.layout import LayoutError
from prmbench.sandbox.types import STATUSES, ExecResult, Limits
from prmbench.sandbox.worker import recv_msg, send_request

#: First uid/gid used for sandbox slots when running as root.
BASE_UID = 65000
#: How many uids to try when reserving one.
UID_RANGE = 1000
#: Seconds the host waits past the wall limit for the worker's reply before killing the slot.
GRACE_SECONDS = 3.0
#: Seconds allowed for a worker to start and say hello.
START_TIMEOUT = 60.0
#: Seconds the host waits for the output pipes to close once the worker has replied.
DRAIN_SECONDS = 2.0


def _lock_dir() -> str:
    """Where uid reservations live: /run (root only) when writable, else the temp dir."""
    base = "/run" if os.geteuid() == 0 and os.access("/run", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(base, f"prmbench-sandbox-uids-{os.geteuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise SlotStartError(f"{path} is not a private directory of uid {os.geteuid()}; remove it and retry")
    return path


# Workers are started from this single long-lived thread: bwrap --die-with-parent (and
# PR_SET_PDEATHSIG in general) fires when the *thread* that forked it exits, so starting
# one from a short-lived caller thread would kill it when that thread ends.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prmbench-sandbox-spawner")


class SlotStartError(RuntimeError):
    """A worker could not be started or refused to run (the message says why)."""


def _uid_in_use(uid: int) -> bool:
    """Whether `uid` (also used as gid) belongs to an account or group, or runs processes."""
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(uid)
        return True
    except KeyError:
        pass
    return bool(processes_of_uid(uid))


def reserve_uid() -> tuple[int, int]:
    """Reserve a free sandbox uid; returns (uid, lock fd). Close the fd to release it.

    A uid is free when no other sandbox holds its lock file and no account, group or
    process uses it (so killing everything under it can only hit the sandbox's own).
    """
    lock_dir = _lock_dir()
    for uid in range(BASE_UID, BASE_UID + UID_RANGE):
        fd = os.open(os.path.join(lock_dir, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _uid_in_use(uid):
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
        python: Interpreter that runs inside (under "bwrap": the base interpreter of its venv).
        packages: Installed packages made importable inside (see `Sandbox`).
    """

    def __init__(self, level: str, python: str, packages: tuple[str, ...] = ()) -> None:
        self.level = level
        self.python = python
        self.packages = tuple(packages)
        self.dedicated = os.geteuid() == 0
        self.uid: int | None = None
        self._uid_lock = -1
        if self.dedicated:
            self.uid, self._uid_lock = reserve_uid()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._run_ids = itertools.count(1)
        self._stderr: tempfile._TemporaryFileWrapper | None = None
        self._lock = threading.Lock()
        self._compiled: set[str] = set()  # trusted programs the running worker has compiled
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
        try:
            cmd = isolation.worker_command(self.level, self.python, self.uid if self.uid is not None else 0,
                                           self.packages)
        except (OSError, LayoutError) as exc:
            raise SlotStartError(f"{self.level} worker cannot start: {exc}") from exc
        self._stderr = tempfile.TemporaryFile()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/"}
        host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def spawn() -> subprocess.Popen:
            """Start the launcher (runs on the spawner thread, see `_spawner`)."""
            return subprocess.Popen(
                cmd, stdin=worker_end.fileno(), stdout=worker_end.fileno(), stderr=self._stderr,
                start_new_session=True, env=env, cwd="/",
            )

        try:
            self._compiled = set()
            self._proc = _spawner.submit(spawn).result()
        except OSError as exc:
            host_end.close()
            raise SlotStartError(f"cannot start {cmd[0]}: {exc}") from exc
        finally:
            worker_end.close()
        self._sock = host_end
        try:
            hello = recv_msg(self._sock.fileno(), time.monotonic() + START_TIMEOUT, 1 << 20)
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
        if hello.get("uid") == 0 or (self.dedicated and hello.get("uid") != self.uid):
            self.kill()
            raise SlotStartError(f"{self.level} worker runs as uid {hello.get('uid')}, not {self.uid}; refusing")
        self.hello = hello

    def _stderr_text(self) -> str:
        """The tail of what the launcher and worker wrote to stderr (for error messages)."""
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """Kill the worker and everything it started (its whole namespace / uid).

        Closing the control socket makes an idle worker kill its leftovers and exit. As
        root the slot's uid is ours alone, so every process under it is the worker or a
        leftover: they are SIGKILLed (the worker is pid 1 of the sandbox's pid namespace, so
        that tears the namespace down) and bwrap, their parent, exits and reaps them. A
        launcher still running after 0.5 s has its process group SIGKILLed (bwrap's
        --die-with-parent then takes the sandbox along).
        """
        proc, self._proc = self._proc, None
        if self._sock is not None:  # an idle worker exits on EOF, killing what is left
            self._sock.close()
            self._sock = None
        if self.dedicated and self.uid is not None:
            self._kill_uid(self.uid)
        if proc is not None:
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # --die-with-parent takes the sandbox along
                except (ProcessLookupError, PermissionError):
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

    def run(self, program: str, stdin: str, limits: Limits, trusted: bool = False) -> ExecResult:
        """Run one program in this slot (starting the worker if needed); see `Sandbox.run`."""
        with self._lock:
            return self._run(program, stdin, limits, trusted)

    def _error(self, message: str, wall: float = 0.0, status: str = "sandbox_error") -> ExecResult:
        """A result for a run the host had to end itself (no output kept)."""
        return ExecResult(status, None, "", "", wall, self.level, message)

    def _run(self, program: str, stdin: str, limits: Limits, trusted: bool = False) -> ExecResult:
        """Make the run's pipes, hand the child's ends to the worker, then feed stdin, read
        and cap the output and enforce the wall deadline here, outside the sandbox."""
        self.start()
        assert self._sock is not None
        sock = self._sock
        run_id = next(self._run_ids)
        program_r, program_w = os.pipe()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        child_ends = [program_r, stdin_r, stdout_w, stderr_w]
        ours = {program_w, stdin_w, stdout_r, stderr_r}
        start = time.monotonic()
        try:
            try:
                request: dict = {"run": run_id, "limits": limits.to_dict()}
                if trusted:
                    key = hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest()
                    request["compiled"] = key
                    if key not in self._compiled:
                        request["source"] = program
                        self._compiled.add(key)
                send_request(sock, b"R", request, child_ends)
            except OSError as exc:
                self.kill()
                return self._error(f"worker not accepting requests: {exc}")
            finally:
                for fd in child_ends:
                    os.close(fd)
            return self._supervise(sock, run_id, limits, start, program.encode("utf-8", "surrogatepass"),
                                   stdin.encode("utf-8", "surrogatepass"), program_w, stdin_w, stdout_r, stderr_r, ours)
        finally:
            for fd in ours:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _supervise(
        self, sock: socket.socket, run_id: int, limits: Limits, start: float, program: bytes, stdin: bytes,
        program_w: int, stdin_w: int, stdout_r: int, stderr_r: int, ours: set[int],
    ) -> ExecResult:
        """The host's side of one run (see `_run`); closes the fds it finishes with."""
        cap = limits.max_output_bytes
        pending = {program_w: memoryview(program), stdin_w: memoryview(stdin)}
        output = {stdout_r: bytearray(), stderr_r: bytearray()}
        poller = select.poll()
        for fd in pending:
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLOUT)
        for fd in output:
            poller.register(fd, select.POLLIN)
        poller.register(sock.fileno(), select.POLLIN)

        def close(fd: int) -> None:
            """Stop watching and close one of our pipe ends."""
            poller.unregister(fd)
            ours.discard(fd)
            os.close(fd)

        deadline = start + limits.wall_seconds
        overflow = False
        kill_sent = ""
        hard_deadline = drain_deadline = 0.0
        reply: dict | None = None
        while reply is None or any(fd in ours for fd in output):
            now = time.monotonic()
            if reply is None:
                if not kill_sent and (overflow or now >= deadline):
                    kill_sent = "output_limit" if overflow else "timeout"
                    try:
                        send_request(sock, b"K", {"run": run_id, "reason": kill_sent})
                    except OSError:
                        pass
                    hard_deadline = now + GRACE_SECONDS
                if kill_sent and now >= hard_deadline:
                    self.kill()
                    return self._error(
                        f"no answer within wall limit + {GRACE_SECONDS} s; killed the worker slot",
                        now - start, status="timeout" if kill_sent == "timeout" else "output_limit",
                    )
                wait = (hard_deadline if kill_sent else deadline) - now
            else:
                if now >= drain_deadline:  # something still holds the output pipes
                    self.kill()
                    break
                wait = drain_deadline - now
            for fd, _event in poller.poll(max(1, int(wait * 1000) + 1)):
                if fd == sock.fileno():
                    try:
                        reply = recv_msg(fd, time.monotonic() + GRACE_SECONDS, 1 << 20)
                    except (TimeoutError, ValueError, OSError) as exc:
                        self.kill()
                        return self._error(f"bad reply from worker: {exc}", time.monotonic() - start)
                    if reply is None:
                        detail = self._stderr_text()
                        self.kill()
                        return self._error("worker died" + (f": {detail}" if detail else ""), time.monotonic() - start)
                    poller.unregister(fd)
                    for w in list(pending):
                        if w in ours:
                            close(w)
                    drain_deadline = time.monotonic() + DRAIN_SECONDS
                elif fd in pending:
                    try:
                        n = os.write(fd, pending[fd][: 1 << 16])
                        pending[fd] = pending[fd][n:]
                    except BlockingIOError:
                        continue
                    except OSError:  # EPIPE: the program closed it
                        pending[fd] = pending[fd][:0]
                    if not pending[fd]:
                        close(fd)
                elif fd in output:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        close(fd)
                        continue
                    buf = output[fd]
                    room = cap - len(buf)
                    if len(chunk) > room:
                        overflow = True
                    if room > 0:
                        buf += chunk[:room]
        assert reply is not None
        host_wall = time.monotonic() - start
        if overflow:
            reply = {**reply, "status": "output_limit", "exit_code": None,
                     "message": f"output exceeded {cap} bytes"}
        elif reply.get("killed") == "timeout":
            reply = {**reply, "status": "timeout", "exit_code": None,
                     "message": f"wall time exceeded {limits.wall_seconds} s"}
        result = self._result(reply, output[stdout_r], output[stderr_r], host_wall)
        if reply.get("retire") is True or reply.get("run") != run_id:
            self.kill()  # the next run gets a fresh worker (and a fresh /tmp)
        return result

    def _result(self, reply: dict, stdout: bytes, stderr: bytes, host_wall: float) -> ExecResult:
        """Validate a worker reply and turn it into an ExecResult."""
        status = reply.get("status")
        if status not in STATUSES:
            self.kill()
            return self._error(f"worker sent unknown status {status!r}", host_wall)
        exit_code = reply.get("exit_code")
        if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
            exit_code = None
        wall = reply.get("wall_seconds")
        if not isinstance(wall, (int, float)) or not 0 <= wall <= host_wall + 1:
            wall = host_wall
        message = reply.get("message")
        return ExecResult(
            status=status, exit_code=exit_code,
            stdout=bytes(stdout).decode("utf-8", "replace"), stderr=bytes(stderr).decode("utf-8", "replace"),
            wall_seconds=float(wall), isolation=self.level,
            message=message[:1000] if isinstance(message, str) else "",
        )
