"""Judging a program with a data set's own ``check(candidate)`` test, unforgeably.

The original HumanEval grades a completion by running ``program + test + check(entry_point)``
as one program. Run that way, the candidate shares a process with the check and can decide
the verdict itself: write the "passed" marker, return an object whose ``__eq__`` says yes,
seed the check's ``random``, redefine a helper the check calls (``poly``), read the check's
expected values from its frames, or end the process early. Here nothing the candidate can
reach decides the verdict.

Design (one sandbox run, two processes)
    The sandbox runs `CHECK_DRIVER_SOURCE` (a trusted program, see `Sandbox.run(trusted=True)`).
    Its stdin is ``<n>\\n`` + the candidate job (n bytes of JSON: the program and its entry
    point) + the check job (JSON: the prompt, the test code, the entry point, a nonce).

    1. The driver makes itself non-dumpable (``PR_SET_DUMPABLE`` 0: no process of the same uid
       may ptrace it, read its memory or open its ``/proc/PID/fd``), blocks every signal it
       can, and imports the modules checks use. Then it reads the candidate job only, and forks.
    2. The child is the *candidate process*: it drops every file descriptor except one pipe
       for requests and one for replies (stdin, stdout and stderr become /dev/null), runs the
       program and answers each request ``{"a": args, "k": kwargs}`` (typed JSON, see
       `prmbench.code_judge.encode_value`) with ``{"v": typed JSON of the return value}``,
       ``{"raise": exception type name, "msg": ...}``, ``{"fatal": name}`` (SystemExit,
       KeyboardInterrupt...) or ``{"unsupported": why}`` (not a builtin value). It was forked
       before the check job was read, so neither its memory nor any file or fd it can reach
       holds the test code, the expected values or the nonce.
    3. The parent is the *checker*: it reads the check job, waits for the candidate's
       ``loaded`` reply, executes the prompt (helpers such as ``poly`` and ``encode_cyclic``
       come from the data set, never from the candidate), binds the entry point's name to a
       proxy, executes the test code and calls ``check(proxy)``. The proxy forwards each call
       to the candidate process and returns the decoded value, so the check's assertions
       compare only real builtin values, in a process the candidate cannot touch. It reports
       ``{"nonce", "status", "reason"}`` on its own stdout, which only it holds.

    What the candidate can still do: answer calls with any builtin values (it must compute
    the right ones), raise (the proxy raises the builtin exception of that name, so a check
    may expect one; ``StopIteration`` becomes `CandidateError`, which cannot end a loop in the
    check), or misbehave: end its process, close a pipe, send a malformed, oversized or
    non-builtin reply, raise ``SystemExit``/``BaseException``, sleep, kill or stop the checker.
    Each of these fails the verdict (a "broken" flag that the check cannot catch), or ends
    the run without a verdict, which is a failure too. The host accepts a pass only from a
    run that exited normally and printed a line with its nonce.

Cost
    A fork and one pipe round trip per call: on the 2-core development machine (load ~11)
    17.7 ms instead of 9.5 ms per canonical solution, 1.18x the old wrapper's time on a mix of
    984 canonical and pool programs (``benchmarks/bench_humaneval_check.py``). The sandbox
    worker preloads the modules the checker imports before it forks.

Deliberate differences from running ``program + test + check``
    * The check's helper functions are the prompt's, not a redefinition in the completion.
    * Return values that typed JSON cannot carry (generators, numpy values, custom classes)
      fail; arguments the check passes are copies, so a candidate mutating them has no
      effect on the check.
    * An exception the candidate raises inside the call is re-raised by name only.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from prmbench.code_judge import DEFAULT_MEMORY_MB, typed_json_source

#: Largest reply (bytes of JSON) the checker accepts from the candidate process.
MAX_REPLY_BYTES = 1 << 26

_CHECK_MAIN = r'''
import builtins as _b, json as _json, os as _os, signal as _signal, struct as _struct, sys as _sys

_HDR = _struct.Struct(">I")
_MAX_REPLY = %(max_reply)d


def _read_exact(fd, n):
    chunks = []
    while n:
        try:
            b = _os.read(fd, min(n, 1 << 20))
        except InterruptedError:
            continue
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _send(fd, obj):
    data = _json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    view = memoryview(_HDR.pack(len(data)) + data)
    while view:
        view = view[_os.write(fd, view):]


def _recv(fd, cap):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = _HDR.unpack(head)
    if size > cap:
        raise ValueError("reply of %%d bytes is over the %%d-byte cap" %% (size, cap))
    body = _read_exact(fd, size)
    if body is None:
        return None
    return _json.loads(body)


def _text(e):
    try:
        return str(e)[:300]
    except BaseException:
        return ""


def _prctl(option, arg):
    import ctypes
    return ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)


def _candidate(job, req_r, resp_w):
    """The candidate process: run the program, answer calls with typed JSON."""
    import types
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    devnull = _os.open(_os.devnull, _os.O_RDWR)
    for fd in (0, 1, 2):
        _os.dup2(devnull, fd)
    low = 3
    for fd in sorted({req_r, resp_w}):
        _os.closerange(low, fd)
        low = fd + 1
    _os.closerange(low, 1 << 16)
    _prctl(4, 1)  # PR_SET_DUMPABLE: an ordinary process again (the checker stays non-dumpable)
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = _b
    _sys.modules["__main__"] = main
    ns = main.__dict__
    code, entry = job["code"], job["entry"]
    del job
    try:
        exec(compile(code, "<solution>", "exec"), ns)
        if entry not in ns:
            raise NameError("name %%r is not defined" %% entry)
        fn = ns[entry]
        if not callable(fn):
            raise TypeError("%%s is not callable" %% entry)
    except BaseException as e:
        _send(resp_w, {"load_error": type(e).__name__, "msg": _text(e)})
        _os._exit(0)
    _send(resp_w, {"loaded": True})
    while True:
        req = _recv(req_r, 1 << 30)
        if req is None:
            _os._exit(0)
        args, kwargs = decode_value(req["a"]), decode_value(req["k"])
        try:
            out = fn(*args, **kwargs)
        except Exception as e:
            rep = {"raise": type(e).__name__, "msg": _text(e)}
        except BaseException as e:
            rep = {"fatal": type(e).__name__}
        else:
            try:
                rep = {"v": encode_value(out)}
            except BaseException as e:
                rep = {"unsupported": _text(e)}
        _send(resp_w, rep)


class CandidateError(RuntimeError):
    """The candidate raised an exception that is not re-raised by its own name."""


class _Broken(BaseException):
    """The candidate broke the protocol (the verdict is a failure whatever the check does)."""


# Builtin exceptions the proxy re-raises by name; StopIteration & co. could end a loop in the check.
_RAISABLE = {k: v for k, v in vars(_b).items() if isinstance(v, type) and issubclass(v, Exception)
             and not issubclass(v, (StopIteration, StopAsyncIteration))}


def _checker(req_w, resp_r):
    """The checker process: run the data set's check against a proxy of the candidate."""
    chunks = []
    while True:
        b = _os.read(0, 1 << 20)
        if not b:
            break
        chunks.append(b)
    job = _json.loads(b"".join(chunks))
    out_fd = _os.dup(1)
    devnull = _os.open(_os.devnull, _os.O_RDWR)
    _os.dup2(devnull, 0)
    _os.dup2(devnull, 1)  # what the check code prints goes nowhere
    nonce = job["nonce"]

    def verdict(status, reason):
        line = _json.dumps({"nonce": nonce, "status": status, "reason": str(reason)[:300]}) + "\n"
        _os.write(out_fd, line.encode())
        _os._exit(0)

    broken = []

    def fail(reason):
        if not broken:
            broken.append(reason)
        raise _Broken(broken[0])

    def candidate(*args, **kwargs):
        if broken:
            raise _Broken(broken[0])
        try:
            payload = {"a": encode_value(list(args)), "k": encode_value(dict(kwargs))}
        except UnsupportedValue as e:  # a limit of this judge, not the candidate's doing
            verdict("check_error", "the check passed an argument typed JSON cannot carry: " + _text(e))
        try:
            _send(req_w, payload)
            rep = _recv(resp_r, _MAX_REPLY)
        except Exception as e:  # a closed pipe, an oversized, malformed or too deeply nested reply
            fail("bad reply from the candidate process: %%s %%s" %% (type(e).__name__, _text(e)))
        if type(rep) is not dict or len(rep) not in (1, 2):
            fail("the candidate process ended or sent a malformed reply")
        if "v" in rep and len(rep) == 1:
            try:
                return decode_value(rep["v"])
            except Exception as e:
                fail("the candidate sent a malformed value: " + _text(e))
        if type(rep.get("raise")) is str:
            cls = _RAISABLE.get(rep["raise"], CandidateError)
            msg = str(rep.get("msg", ""))[:300]
            try:
                exc = cls(msg)
            except Exception:
                exc = CandidateError(rep["raise"] + ": " + msg)
            raise exc
        if type(rep.get("fatal")) is str:
            fail("the candidate raised " + rep["fatal"][:100])
        if "unsupported" in rep:
            fail("the candidate returned a value that is not a builtin value: " + str(rep["unsupported"])[:200])
        fail("the candidate process sent a malformed reply")

    entry = job["entry"]
    candidate.__name__ = candidate.__qualname__ = entry
    ns = {"__name__": "__check__", "__builtins__": _b}
    try:
        exec(compile(job["prelude"], "<prompt>", "exec"), ns)
        ns[entry] = candidate  # the prompt's stub (and any helper calling it) now reach the candidate
        exec(compile(job["test"], "<test>", "exec"), ns)
        check = ns["check"]
    except BaseException as e:
        verdict("check_error", "the data set's prompt or test code failed: %%s: %%s" %% (type(e).__name__, _text(e)))
    try:
        first = _recv(resp_r, _MAX_REPLY)
    except BaseException:
        first = None
    if type(first) is dict and type(first.get("load_error")) is str:
        verdict("fail", "loading the code raised " + first["load_error"])
    if first != {"loaded": True}:
        verdict("fail", "the candidate process ended before its code was loaded")

    try:
        check(candidate)
    except _Broken:
        pass
    except BaseException as e:
        if not broken:
            name = type(e).__name__
            verdict("memory" if isinstance(e, MemoryError) else "fail", name + (": " + _text(e) if _text(e) else ""))
    if broken:
        verdict("fail", broken[0])
    verdict("pass", "passed")


def _refuse(reason):
    """The judge itself cannot work here: say so (no nonce, so the host records a sandbox error)."""
    _os.write(1, (_json.dumps({"status": "sandbox_error", "reason": reason}) + "\n").encode())


def _main():
    try:
        dumpable = _prctl(4, 0)  # PR_SET_DUMPABLE 0: same-uid processes cannot ptrace us or open our fds
    except BaseException as e:
        dumpable = e
    if dumpable != 0:
        _refuse("cannot make the checker non-dumpable: %%r" %% (dumpable,))
        return
    _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    import copy, math, random, string, typing  # what checks import, loaded before the candidate exists
    header = b""
    while not header.endswith(b"\n"):
        b = _os.read(0, 1)
        if not b:
            return
        header += b
    job = _json.loads(_read_exact(0, int(header)))
    req_r, req_w = _os.pipe()
    resp_r, resp_w = _os.pipe()
    try:
        pid = _os.fork()
    except OSError as e:
        _refuse("cannot fork the candidate process: %%s" %% e)
        return
    if pid == 0:
        try:
            _os.close(req_w)
            _os.close(resp_r)
            _candidate(job, req_r, resp_w)
        finally:
            _os._exit(0)
    del job
    _os.close(req_r)
    _os.close(resp_w)
    _checker(req_w, resp_r)


_main()
'''


def _driver_source() -> str:
    return typed_json_source() + "\n\n" + _CHECK_MAIN % {"max_reply": MAX_REPLY_BYTES}


#: The program the sandbox runs (see the module docstring); both jobs arrive on stdin.
CHECK_DRIVER_SOURCE = _driver_source()


@dataclass(frozen=True)
class CheckVerdict:
    """The outcome of one check run.

    `status`: "pass", "fail" (an assertion failed, the code raised or broke the protocol),
    "timeout", "memory", "output_limit", "check_error" (the data set's own prompt or test
    code failed) or "sandbox_error". `reason` says why; `isolation` is the sandbox level.
    """

    status: str
    reason: str
    isolation: str
    seconds: float = 0.0


def check_stdin(program: str, entry_point: str, prelude: str, test: str, nonce: str) -> str:
    """The driver's stdin: the candidate job (length-prefixed) then the check job."""
    cand = json.dumps({"code": program, "entry": entry_point})  # ASCII: len() counts bytes
    rest = json.dumps({"prelude": prelude, "test": test, "entry": entry_point, "nonce": nonce})
    return f"{len(cand)}\n{cand}{rest}"


def run_check(sandbox: Any, program: str, entry_point: str, prelude: str, test: str, *, timeout: float,
              memory_mb: int = DEFAULT_MEMORY_MB) -> CheckVerdict:
    """Grade `program` with the data set's ``check(candidate)`` test (`test`, after executing
    `prelude`, the prompt, in the checker) within `timeout` seconds of wall time."""
    from prmbench.sandbox import Limits

    nonce = secrets.token_hex(16)
    res = sandbox.run(CHECK_DRIVER_SOURCE, check_stdin(program, entry_point, prelude, test, nonce),
                      Limits(wall_seconds=timeout, cpu_seconds=timeout, memory_mb=memory_mb), trusted=True)
    report = None
    for line in res.stdout.split("\n"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("nonce") == nonce:
            report = rec
            break
    if res.status != "ok":  # no verdict counts from a run that did not end normally
        status = "fail" if res.status == "runtime_error" else res.status
        why = res.message[:200] or f"the checker ended with exit code {res.exit_code}: {res.stderr.strip()[-200:]}"
        return CheckVerdict(status, why, res.isolation, res.wall_seconds)
    if report is None or report.get("status") not in ("pass", "fail", "memory", "check_error"):
        refused = [ln for ln in res.stdout.split("\n") if ln.startswith('{"status": "sandbox_error"')]
        why = (refused[0] if refused else res.stderr.strip()[-200:]) or "the checker reported no verdict"
        return CheckVerdict("sandbox_error", why, res.isolation, res.wall_seconds)
    return CheckVerdict(str(report["status"]), str(report.get("reason", ""))[:300], res.isolation, res.wall_seconds)
