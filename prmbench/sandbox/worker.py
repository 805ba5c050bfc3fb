"""The in-sandbox worker: a long-lived process that forks one fresh child per program.

This file is standalone (standard library only). The host starts it inside the isolation
layer as ``python -I -c <this file's source> [options]``; it must not import prmbench,
which is not visible inside the sandbox. The host also imports it for the wire format
(:func:`send_msg`, :func:`recv_msg`).

Life of a worker:

1. Start as root (bwrap/unshare as root) or as the invoking user; optionally mount a private
   ``/tmp`` (``--mount-tmp``), then drop to the slot's dedicated uid/gid (``--drop-uid``),
   clear the capability bounding set, set no_new_privs and make itself non-dumpable (so a
   program running under the same uid cannot ptrace it or read its fds).
2. Verify that root's powers are gone (uid/gid non-zero, no capabilities, ``setuid(0)``
   fails) and report the result in a hello message. It never runs a program as uid 0.
3. Loop: receive a run request - the limits, plus four pipe ends made by the host and
   passed over the control socket (SCM_RIGHTS): program source, stdin, stdout, stderr.
   Fork a child that calls ``setsid()``, reads the program from its pipe, sets the rlimits
   and ``exec``s it with the other three pipes as fds 0/1/2. The worker itself never sees
   the program, its input or its output, so nothing of one run stays in the memory that
   later children inherit. The host feeds stdin, reads and caps the output and enforces
   the wall deadline; it sends a kill request when a limit is hit. When the program exits
   or is to be killed, the worker kills every process left over (``kill(-1)`` when that can
   only reach the sandbox, plus a walk of the process tree), wipes the working directory
   and replies with the exit status.

Wire format on the control socket: host to worker, every message is one marker byte
(``R`` run, with the four fds attached; ``K`` kill) followed by a frame; worker to host,
frames only. A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import time

MAX_REQUEST_BYTES = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")

# Statuses the worker may report (the host validates replies against this set).
STATUSES = ("ok", "runtime_error", "timeout", "memory", "output_limit", "sandbox_error")


# --------------------------------------------------------------------------- wire format


def send_msg(fd: int, obj: dict) -> None:
    """Write one length-prefixed JSON message to file descriptor `fd` (blocking)."""
    data = json.dumps(obj).encode("utf-8")
    buf = memoryview(_HEADER.pack(len(data)) + data)
    while buf:
        try:
            n = os.write(fd, buf)
        except InterruptedError:
            continue
        buf = buf[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """Read exactly `n` bytes from `fd`; None on EOF. Raises TimeoutError past `deadline`."""
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except InterruptedError:
            continue
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_msg(fd: int, deadline: float | None = None, max_bytes: int = MAX_REQUEST_BYTES) -> dict | None:
    """Read one message from `fd`; None on EOF.

    Raises TimeoutError when `deadline` (a ``time.monotonic()`` value) passes and ValueError
    when the message is larger than `max_bytes` or is not a JSON object.
    """
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > max_bytes:
        raise ValueError(f"message of {size} bytes exceeds the {max_bytes}-byte cap")
    body = _read_exact(fd, size, deadline)
    if body is None:
        return None
    obj = json.loads(body.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("message is not a JSON object")
    return obj


def send_request(sock: socket.socket, marker: bytes, obj: dict, fds: list[int] | None = None) -> None:
    """Host side: send a marker byte (with `fds` attached) and a framed JSON message."""
    if fds:
        socket.send_fds(sock, [marker], fds)
    else:
        sock.sendall(marker)
    send_msg(sock.fileno(), obj)


def recv_request(sock: socket.socket, max_fds: int = 4) -> tuple[bytes, list[int], dict] | None:
    """Worker side: receive (marker, fds, message); None on EOF. Surplus fds are closed."""
    while True:
        try:
            data, fds, flags, _ = socket.recv_fds(sock, 1, max_fds)
            break
        except InterruptedError:
            continue
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    if flags & getattr(socket, "MSG_CTRUNC", 0):
        for fd in fds:
            os.close(fd)
        fds = []
    msg = recv_msg(sock.fileno(), time.monotonic() + 30, 1 << 20)
    if msg is None:
        for fd in fds:
            os.close(fd)
        return None
    return data, list(fds), msg


# --------------------------------------------------------------------------- privileges

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_MS_NOSUID = 2
_MS_NODEV = 4


def _libc():  # type: ignore[no-untyped-def]
    """The C library, for prctl/mount/capset (ctypes is imported only when needed)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int) -> int:
    """Call prctl(option, arg); returns its result (-1 on failure, never raises)."""
    return int(_libc().prctl(option, arg, 0, 0, 0))


_MS_RDONLY = 1

#: World-writable places of a usual host, hidden under an empty read-only tmpfs when the
#: host filesystem is visible ("unshare+uid"), so a program cannot leave files on the host.
SHARED_WRITABLE_DIRS = ("/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/run/shm")


def _mount_tmpfs(target: str, size_mb: int, read_only: bool = False) -> None:
    """Mount a fresh tmpfs on `target` (needs CAP_SYS_ADMIN in our mount namespace)."""
    import ctypes

    libc = _libc()
    opts = f"size={size_mb}m,mode={'755' if read_only else '1777'}".encode()
    flags = _MS_NOSUID | _MS_NODEV | (_MS_RDONLY if read_only else 0)
    if libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target}: {os.strerror(err)}")


def _private_tmp(size_mb: int) -> None:
    """A private writable /tmp; the other shared writable directories become empty and read-only."""
    _mount_tmpfs("/tmp", size_mb)
    for path in SHARED_WRITABLE_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            _mount_tmpfs(path, 1, read_only=True)


def _capabilities() -> dict[str, str]:
    """The Cap* lines of /proc/self/status (hex masks)."""
    caps: dict[str, str] = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                caps[key] = value.strip()
    return caps


def _drop_privileges(uid: int, gid: int) -> None:
    """Become `uid`/`gid` for good: empty groups, bounding set cleared, no_new_privs."""
    for cap in range(64):  # needs CAP_SETPCAP; harmless (EINVAL/EPERM) past the last cap
        _prctl(_PR_CAPBSET_DROP, cap)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _clear_capabilities()


def _clear_capabilities() -> None:
    """Empty the effective, permitted, inheritable and ambient sets (lowering is always allowed)."""
    import ctypes

    libc = _libc()
    _prctl_ambient_clear = libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    del _prctl_ambient_clear

    class Header(ctypes.Structure):
        """struct __user_cap_header_struct."""

        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        """struct __user_cap_data_struct (two of them for 64-bit capability sets)."""

        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _root_powers_left() -> list[str]:
    """Problems that show we could still act as root (empty when all powers are gone)."""
    problems = []
    if 0 in os.getresuid():
        problems.append(f"uid is still 0 (resuid={os.getresuid()})")
    if 0 in os.getresgid():
        problems.append(f"gid is still 0 (resgid={os.getresgid()})")
    caps = _capabilities()
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        if key in caps and int(caps[key], 16) != 0:
            problems.append(f"{key}={caps[key]}")
    try:
        os.setuid(0)
    except OSError:  # EPERM, or EINVAL in a user namespace where uid 0 is not mapped
        pass
    else:
        problems.append("setuid(0) succeeded")
    return problems


# --------------------------------------------------------------------------- killing


def _children_of(pid: int) -> list[int]:
    """Direct children of `pid` from /proc (all its threads)."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return kids


#: Exit status and rusage of children reaped by `_reap_all`, by pid (so that the program's
#: own status is not lost when the clean-up reaps it first).
reaped: dict[int, tuple[int, object]] = {}


def _reap_all() -> None:
    """Reap every exited child without blocking, recording statuses in `reaped`."""
    while True:
        try:
            pid, status, rusage = os.wait3(os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reaped[pid] = (status, rusage)


def kill_everything(kill_all_allowed: bool) -> None:
    """Kill every process this worker's programs left behind, then reap them.

    With `kill_all_allowed` (we are pid 1 of a private pid namespace, or run under a uid
    reserved for this slot) ``kill(-1, SIGKILL)`` reaches exactly the sandbox's processes.
    Otherwise, and in addition, walk our process tree: orphans are re-parented to us (pid 1
    or child subreaper), so repeating the walk catches ``setsid()``-ed grandchildren.
    """
    me = os.getpid()
    for _ in range(200):
        found = False
        if kill_all_allowed:
            # Its return value says little (it reports the last target's error), so only
            # the tree walk below decides whether anything is left.
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        stack = _children_of(me)
        while stack:
            pid = stack.pop()
            stack.extend(_children_of(pid))
            try:
                os.kill(pid, signal.SIGKILL)
                found = True
            except OSError:
                pass
        if not found:
            _reap_all()
            return
        time.sleep(0.001)
        _reap_all()


# --------------------------------------------------------------------------- the child


def _read_all(fd: int) -> bytes:
    """Read `fd` to EOF."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _close_all_except(keep: set[int]) -> None:
    """Close every file descriptor not in `keep`."""
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


#: Code objects of trusted programs (the host's own, e.g. the code judge's driver), compiled
#: once in the worker and inherited by every child: key -> code (see `run_one`).
_COMPILED: dict = {}


def _child(limits: dict, program_r: int, fds: tuple[int, int, int, int, int], workdir: str,
           code_obj: object = None) -> None:
    """Run in the forked child: session, fds, program, rlimits; run the program; _exit.

    `setup_w` reports a failed setup and is closed before the program starts, so a
    program cannot fake a sandbox error; `status_w` reports MemoryError (faking that only
    turns the program's own run into another failure).
    """
    import resource

    stdin_r, stdout_w, stderr_w, status_w, setup_w = fds
    try:
        os.setsid()
        _prctl(_PR_SET_DUMPABLE, 1)  # an ordinary process again (the worker stays non-dumpable)
        program = _read_all(program_r).decode("utf-8", "replace")
        os.close(program_r)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(stdin_r, 0)
        os.dup2(stdout_w, 1)
        os.dup2(stderr_w, 2)
        _close_all_except({0, 1, 2, status_w, setup_w})
        os.chdir(workdir)
        cpu = max(1, int(-(-limits["cpu_seconds"] // 1)))
        mem = int(limits["memory_mb"]) * 1024 * 1024
        fsize = int(limits["max_file_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["max_open_files"]),) * 2)
        # The worker itself counts against RLIMIT_NPROC (same uid), hence the +1.
        resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["max_processes"]) + 1,) * 2)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    except BaseException as exc:  # setup failed: report it as a sandbox problem
        try:
            os.write(setup_w, repr(exc).encode()[:500])
        finally:
            os._exit(125)
    os.close(setup_w)

    import builtins
    import io
    import linecache
    import traceback

    # Fresh standard streams on the new fds (nothing buffered from the worker).
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )
    sys.argv = ["<program>"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
    # One thread per numeric library: threads count against RLIMIT_NPROC, and each slot
    # already has a core of its own.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    os.environ.clear()
    os.environ.update(env)
    lines = program.splitlines(keepends=True)
    linecache.cache["<program>"] = (len(program), None, lines, "<program>")
    # A fresh __main__ module, as `python program.py` would have (pickle and friends find
    # the program's functions there).
    import types

    main_module = types.ModuleType("__main__")
    main_module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main_module
    namespace = main_module.__dict__

    code = 0
    try:
        try:
            exec(code_obj if code_obj is not None else compile(program, "<program>", "exec"), namespace)
        finally:
            try:
                import threading

                threading._shutdown()  # type: ignore[attr-defined]  # wait for non-daemon threads
            except BaseException:
                pass
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            try:
                print(exc.code, file=sys.stderr)
            except BaseException:
                pass
            code = 1
    except BaseException as exc:
        code = 1
        try:
            if isinstance(exc, MemoryError):
                os.write(status_w, b"M")
            tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
            traceback.print_exception(type(exc), exc, tb)
        except BaseException:
            pass
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code & 0xFF)


# --------------------------------------------------------------------------- one run


def _wipe(path: str, keep_root: bool, keep: frozenset = frozenset()) -> bool:
    """Delete everything under `path` (and `path` itself unless `keep_root`).

    Iterative (no recursion limit on deep trees) and restores permissions the program took
    away. `keep` are read-only mount points under `path` (an interpreter that lives under
    /tmp): they and the directories leading to them stay, everything else goes. Returns
    True when nothing else is left.
    """
    leading = set()
    for k in keep:
        d = os.path.dirname(k)
        while d.startswith(path.rstrip("/") + "/"):
            leading.add(d)
            d = os.path.dirname(d)
    found: list[str] = []
    stack = [path]
    while stack:
        d = stack.pop()
        if d != path or not keep_root:
            try:
                os.chmod(d, 0o755 if d in leading else 0o700)
            except OSError:
                pass
        found.append(d)
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            if entry.path in keep:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
    for d in reversed(found):  # children were found after their parents
        if (d == path and keep_root) or d in leading:
            continue
        try:
            os.rmdir(d)
        except OSError:
            pass
    if keep_root or leading:
        try:
            stack, left = [path], []
            while stack:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        if entry.path in leading:
                            stack.append(entry.path)
                        elif entry.path not in keep:
                            left.append(entry.path)
            return not left
        except OSError:
            return False
    return not os.path.exists(path)


def run_one(
    ctl: socket.socket, msg: dict, fds: list[int], kill_all_allowed: bool, private_tmp: bool,
    keep: frozenset = frozenset(),
) -> dict:
    """Run one request: fork the child on the host's pipes, wait for it or a kill request.

    Returns the reply: status, exit_code, wall_seconds, cpu_seconds, message, retire.
    """
    import tempfile

    run_id = msg.get("run")
    limits = msg["limits"]
    key = msg.get("compiled")  # a trusted program: compiled here once (its source comes the first time)
    if isinstance(key, str) and isinstance(msg.get("source"), str):
        import hashlib

        if hashlib.sha256(msg["source"].encode("utf-8", "surrogatepass")).hexdigest() == key:
            _COMPILED[key] = compile(msg["source"], "<program>", "exec")
    code_obj = _COMPILED.get(key) if isinstance(key, str) else None
    program_r, stdin_r, stdout_w, stderr_w = fds
    workdir = "/tmp" if private_tmp else tempfile.mkdtemp(prefix="prmbench-run-")
    status_r, status_w = os.pipe()
    setup_r, setup_w = os.pipe()
    reaped.clear()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            ctl.close()
            os.close(status_r)
            os.close(setup_r)
            _child(limits, program_r, (stdin_r, stdout_w, stderr_w, status_w, setup_w), workdir, code_obj)
        finally:
            os._exit(125)
    for fd in (*fds, status_w, setup_w):
        os.close(fd)

    poller = select.poll()
    poller.register(ctl.fileno(), select.POLLIN)
    try:
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pidfd = -1
    wait_status: int | None = None
    rusage = None
    kill_reason = ""
    while wait_status is None:
        if pid in reaped:
            wait_status, rusage = reaped[pid]  # type: ignore[assignment]
            break
        done_pid, st, ru = os.wait4(pid, os.WNOHANG)
        if done_pid == pid:
            wait_status, rusage = st, ru
            break
        if kill_reason:  # killed on request: wait for the child's status
            _, wait_status, rusage = os.wait4(pid, 0)
            break
        for fd, _ in poller.poll(5 if pidfd < 0 else None):
            if fd != ctl.fileno():
                continue
            request = recv_request(ctl)
            if request is None:
                kill_reason = "host gone"
            else:
                marker, extra_fds, kill_msg = request
                for extra in extra_fds:
                    os.close(extra)
                if marker == b"K" and kill_msg.get("run") == run_id:
                    kill_reason = str(kill_msg.get("reason", "killed"))
            if kill_reason:
                kill_everything(kill_all_allowed)
    elapsed = time.monotonic() - start
    if pidfd >= 0:
        os.close(pidfd)
    # The program is over: whatever it left running (setsid-ed grandchildren too) dies now,
    # before the reply, so the host's output pipes reach EOF.
    kill_everything(kill_all_allowed)
    child_status, setup_error = b"", b""
    for fd in (status_r, setup_r):
        os.set_blocking(fd, False)
        try:
            data = os.read(fd, 1024)
        except OSError:
            data = b""
        os.close(fd)
        if fd == status_r:
            child_status = data
        else:
            setup_error = data
    clean = _wipe(workdir, keep_root=private_tmp, keep=keep if private_tmp else frozenset())
    reaped.clear()

    exit_code: int | None
    if os.WIFEXITED(wait_status):
        exit_code = os.WEXITSTATUS(wait_status)
    else:
        exit_code = -os.WTERMSIG(wait_status)
    cpu_used = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0
    message = ""
    if setup_error:
        status = "sandbox_error"
        message = "child setup failed: " + setup_error.decode("utf-8", "replace")
    elif kill_reason:
        status, exit_code = "sandbox_error", None
        message = kill_reason  # the host knows why (timeout, output_limit) and overrides
    elif exit_code == -signal.SIGXCPU or (exit_code == -signal.SIGKILL and cpu_used >= float(limits["cpu_seconds"]) - 0.05):
        # SIGXCPU comes from RLIMIT_CPU (rusage can read a little under the limit on a busy
        # machine); SIGKILL past the soft limit is its hard limit.
        status = "timeout"
        message = f"CPU time exceeded {limits['cpu_seconds']} s"
    elif child_status.startswith(b"M"):
        status = "memory"
        message = f"memory limit ({limits['memory_mb']} MB address space) exceeded"
    elif exit_code == 0:
        status = "ok"
    else:
        status = "runtime_error"
    return {
        "run": run_id,
        "status": status,
        "exit_code": exit_code,
        "killed": kill_reason,
        "wall_seconds": elapsed,
        "cpu_seconds": cpu_used,
        "message": message,
        # Leftovers we could not delete would leak into the next run: ask for a fresh worker.
        "retire": not clean,
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    """Worker entry point. Options: --drop-uid N --drop-gid N --mount-tmp MB --private-tmp
    --keep PATH (a read-only mount under the private /tmp) --site DIR (appended to sys.path)."""
    import argparse

    parser = argparse.ArgumentParser(prog="prmbench-sandbox-worker")
    parser.add_argument("--drop-uid", type=int, default=None)
    parser.add_argument("--drop-gid", type=int, default=None)
    parser.add_argument("--mount-tmp", type=int, default=0, metavar="MB")
    parser.add_argument("--private-tmp", action="store_true")
    parser.add_argument("--keep", action="append", default=[], metavar="PATH")
    parser.add_argument("--site", action="append", default=[], metavar="DIR")
    args = parser.parse_args(argv)
    sys.path.extend(args.site)  # explicitly allowed packages (children inherit it)
    keep = frozenset(args.keep)

    # The control socket (fd 0 = fd 1) moves to a private fd; 0/1 become /dev/null so stray
    # prints cannot corrupt the protocol.
    ctl = socket.socket(fileno=os.dup(0))
    ctl_out = ctl.fileno()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a program must not be able to interrupt us

    # Import now what every child needs, so forked children do not each import it again.
    import atexit  # noqa: F401
    import builtins  # noqa: F401
    import io  # noqa: F401
    import linecache  # noqa: F401
    import resource  # noqa: F401
    import threading  # noqa: F401
    import traceback  # noqa: F401
    import types  # noqa: F401
    # ... and the modules programs commonly import (the code judge's driver among them): a
    # forked child finds them loaded (subprocess alone takes ~5 ms to import).
    import collections  # noqa: F401
    import faulthandler  # noqa: F401
    import hashlib  # noqa: F401
    import marshal  # noqa: F401
    import shutil  # noqa: F401
    import subprocess  # noqa: F401
    # ... and what the humaneval checker (prmbench.check_judge) loads before it forks: the
    # modules the data set's checks and prompts import.
    import copy  # noqa: F401
    import ctypes  # noqa: F401
    import random  # noqa: F401
    import string  # noqa: F401
    import typing  # noqa: F401

    hello: dict = {"ok": True, "pid": os.getpid()}
    try:
        if args.mount_tmp:
            _private_tmp(args.mount_tmp)
        if args.drop_uid is not None:
            _drop_privileges(args.drop_uid, args.drop_gid if args.drop_gid is not None else args.drop_uid)
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        _prctl(_PR_SET_DUMPABLE, 0)
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        problems = _root_powers_left()
        if problems:
            raise PermissionError("refusing to run programs with root powers: " + "; ".join(problems))
        stdlib = os.path.dirname(os.__file__)
        if not os.access(stdlib, os.R_OK | os.X_OK):
            raise PermissionError(
                f"the interpreter's standard library {stdlib} is not readable by uid {os.getuid()}"
            )
    except BaseException as exc:
        send_msg(ctl_out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    dedicated_uid = args.drop_uid is not None
    kill_all_allowed = dedicated_uid or os.getpid() == 1
    hello.update(
        uid=os.getuid(), gid=os.getgid(), caps=_capabilities(), pid1=os.getpid() == 1,
        python=sys.version.split()[0],
    )
    # Everything alive now lives as long as the worker: out of the collector's sight, a forked
    # child's collections do not walk (and copy-on-write fault in) the worker's whole heap.
    import gc

    gc.collect()
    gc.freeze()
    send_msg(ctl_out, hello)

    while True:
        try:
            request = recv_request(ctl)
        except (ValueError, OSError, TimeoutError) as exc:
            send_msg(ctl_out, {"status": "sandbox_error", "message": f"bad request: {exc}"})
            return 1
        if request is None:  # host went away
            kill_everything(kill_all_allowed)
            return 0
        marker, fds, msg = request
        if marker != b"R":
            for fd in fds:
                os.close(fd)
            continue  # a kill request for a run that already ended
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            send_msg(ctl_out, {"run": msg.get("run"), "status": "sandbox_error", "message": "run request without its 4 pipes"})
            continue
        try:
            reply = run_one(ctl, msg, fds, kill_all_allowed, args.private_tmp, keep)
        except Exception as exc:  # a bug or resource exhaustion in the worker itself
            kill_everything(kill_all_allowed)
            reply = {
                "run": msg.get("run"), "status": "sandbox_error", "retire": True,
                "message": f"worker error: {type(exc).__name__}: {exc}",
            }
        send_msg(ctl_out, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
