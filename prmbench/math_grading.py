"""Answer extraction and equivalence checking for math tasks, built on math-verify.

Public API:

- `last_boxed(text)`: the content of the last ``\\boxed{...}`` / ``\\fbox{...}`` of a text.
- `answer_key(answer)`: a cheap normal form of an answer string (same key => same answer).
- `check_equiv(pred, gold, timeout)`: an `EquivResult` (verdict plus reason) for one answer.
- `is_equiv(pred, gold, timeout)`: the boolean verdict of `check_equiv`.

Both answers are bare LaTeX answer strings (what `last_boxed` returns, or a data set's gold
answer). math-verify only finds an answer inside a math environment, so each string is wrapped as
``$\\boxed{...}$`` before `math_verify.parse`; `math_verify.verify` is asymmetric and always gets
the gold answer first.

Time bound. One pathological answer (say ``10^{10^{10}}``) can keep sympy busy for hours, so every
check is bounded by `timeout` seconds:

- In the main thread the check runs in-process under a ``SIGALRM`` interval timer
  (``signal.setitimer``, so fractional seconds work). math-verify's own timeouts are switched off
  (they use whole-second ``signal.alarm`` and report a timeout as a plain ``False``); our timer
  covers parsing and verification together, so a timeout is reported as such. A previously
  installed ``SIGALRM`` handler and timer are restored (and re-armed) afterwards.
- Off the main thread signals cannot be used, so the check runs in a persistent worker process
  (a small pool, one worker per concurrently checking thread, started on demand with
  ``sys.executable``). The worker applies the same in-process timer; if it does not answer within
  ``timeout`` plus a small grace period (stuck in C code), it is killed and the check counts as a
  timeout. Starting a worker (~0.5 s, once per pool slot) is bounded separately
  (`WORKER_START_TIMEOUT`).

Verdicts (including timeouts) are memoised per (pred, gold, timeout) in a bounded LRU, so a
pathological answer repeated across many samples costs its timeout once per process, and the same
question always gets the same answer within a process. Exceptions inside math-verify/sympy never
propagate: they yield a ``"error"`` verdict, which counts as not equivalent.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, TypeVar

__all__ = [
    "EquivResult",
    "EquivReason",
    "WORKER_START_TIMEOUT",
    "answer_key",
    "check_equiv",
    "is_equiv",
    "last_boxed",
]

T = TypeVar("T")
EquivReason = Literal["equivalent", "not_equivalent", "timeout", "error"]

#: Seconds allowed for starting a worker process (imports of sympy/math-verify), off the main thread.
WORKER_START_TIMEOUT: float = 60.0
#: Extra seconds, on top of `timeout`, before an unresponsive worker is killed.
_HARD_GRACE_MIN = 1.0
#: After the deadline the timer keeps firing at this interval until the check has unwound.
_REFIRE_INTERVAL = 0.25
_CACHE_SIZE = 65536
_MAX_IDLE_WORKERS = max(2, os.cpu_count() or 2)


# ------------------------------------------------------------------------------------------------
# Extraction
# ------------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _balanced_group(text: str, start: int) -> str | None:
    """The content of the brace group opening at text[start] == '{', or None if unbalanced.

    Escaped braces (``\\{``, ``\\}``) and other escaped characters do not count.
    """
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in `text`, stripped.

    Nested braces are fine (``\\boxed{\\frac{1}{2}}`` -> ``\\frac{1}{2}``) and escaped braces are
    skipped. The brace-less form ``\\boxed 5`` yields the text up to the next ``$`` or line end
    (trailing ``.``/``,`` removed). Only the last occurrence counts: when it is malformed
    (unbalanced braces, as in a truncated completion) or empty, the result is None even if an
    earlier box was well formed, since the solution's final answer is then broken. None when
    there is no box at all.
    """
    if not text:
        return None
    last = None
    for last in _BOX_RE.finditer(text):
        pass
    if last is None:
        return None
    j = last.end()
    n = len(text)
    while j < n and text[j] in " \t\r\n":
        j += 1
    if j < n and text[j] == "{":
        content = _balanced_group(text, j)
        if content is None:
            return None
    else:
        end = j
        while end < n and text[end] not in "$\n":
            end += 1
        content = text[j:end].strip().rstrip(".,;").rstrip()
    content = content.strip()
    return content or None


# ------------------------------------------------------------------------------------------------
# Cheap normalisation
# ------------------------------------------------------------------------------------------------

_KEY_SUBS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in [
        (r"\\left\.|\\right\.", ""),          # invisible delimiters
        (r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])", ""),
        (r"\\[dt]frac(?![A-Za-z])", r"\\frac"),
        (r"\\displaystyle(?![A-Za-z])", ""),
        (r"\\(?:text|textbf|textrm|textit|mathrm|mathbf|mbox)\{([^{}]*)\}", r"\1"),
        (r"\^\s*\{?\s*\\circ\s*\}?", ""),      # degrees: 30^\circ, 30^{\circ}
        (r"\\degree(?![A-Za-z])", ""),
        (r"\\\$", ""),                         # currency sign
        (r"\\(?:[!,;:> ]|quad(?![A-Za-z])|qquad(?![A-Za-z]))", " "),  # spacing commands
        (r"(\\[A-Za-z]+)\s+(?=[A-Za-z])", "\\1\x00"),  # keep "\pi r" apart from "\pir"
        (r"\s+", ""),
        (r"\x00", " "),
    ]
)


def answer_key(answer: str) -> str:
    """A cheap normal form of an answer string, for pre-clustering before `is_equiv`.

    Removes surrounding ``$``, whitespace, ``\\left``/``\\right`` and spacing commands, maps
    ``\\dfrac``/``\\tfrac`` to ``\\frac``, unwraps ``\\text{...}``-like wrappers, drops degree
    marks, escaped dollar signs and trailing periods. Only formatting is removed, so equal keys
    mean equal answers; different keys may still be equivalent (``0.5`` vs ``\\frac{1}{2}``).
    """
    s = answer.strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$") and not s.endswith("\\$"):
        s = s.strip("$")
    for pat, rep in _KEY_SUBS:
        s = pat.sub(rep, s)
    return s.rstrip(".").strip()


# ------------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EquivResult:
    """The verdict of one equivalence check.

    `equal` is the boolean verdict; `reason` is "equivalent", "not_equivalent", "timeout" (the
    check ran out of time; counts as not equivalent) or "error" (math-verify or the worker failed;
    counts as not equivalent). `detail` says more for "error".
    """

    equal: bool
    reason: EquivReason
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON-compatible form (also the worker protocol)."""
        return {"equal": self.equal, "reason": self.reason, "detail": self.detail}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> "EquivResult":
        """Inverse of `to_json`."""
        return cls(equal=bool(d["equal"]), reason=str(d["reason"]), detail=str(d.get("detail", "")))  # type: ignore[arg-type]


_EQUIVALENT = EquivResult(True, "equivalent")
_NOT_EQUIVALENT = EquivResult(False, "not_equivalent")
_TIMEOUT = EquivResult(False, "timeout")


class _Deadline(BaseException):
    """Raised by our SIGALRM handler; a BaseException so math-verify's `except Exception` passes it."""


class _MathVerifyNoise(logging.Filter):
    """Drop math-verify's one-time warning that its own timeout is disabled (we bound time ourselves)."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return not str(record.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_MathVerifyNoise())

_mv_lock = threading.Lock()
_mv_cache: dict[str, object] = {}


def _math_verify() -> dict[str, object]:
    """Import math-verify lazily (sympy takes ~0.4 s) and build the extraction configs once."""
    if not _mv_cache:
        with _mv_lock:
            if not _mv_cache:
                from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

                _mv_cache.update(
                    parse=parse,
                    verify=verify,
                    config=(LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()),
                )
                # First use compiles regexes and parser tables: do it now, outside any time limit
                # (an interrupted import or table build could leave them half made).
                _compare("1/2", "0.5")
    return _mv_cache


def _wrap(answer: str) -> str:
    """Put a bare answer where math-verify's extraction looks for it."""
    return "$\\boxed{" + answer + "}$"


def _compare(pred: str, gold: str) -> bool:
    """math-verify's verdict on two bare answers, without any time limit (callers bound it)."""
    mv = _math_verify()
    parse, verify, config = mv["parse"], mv["verify"], mv["config"]
    gold_parsed = parse(_wrap(gold), extraction_config=config, parsing_timeout=None)  # type: ignore[operator]
    pred_parsed = parse(_wrap(pred), extraction_config=config, parsing_timeout=None)  # type: ignore[operator]
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))  # type: ignore[operator]


def _call_with_alarm(fn: Callable[[], T], timeout: float) -> T:
    """Run `fn` in the main thread, raising `_Deadline` after `timeout` seconds.

    Saves and restores any existing SIGALRM handler and ITIMER_REAL timer (re-armed with its
    remaining time). The timer re-fires every `_REFIRE_INTERVAL` seconds until `fn` has unwound,
    in case some code swallowed the first `_Deadline`.
    """
    active = [True]

    def on_alarm(signum: int, frame: object) -> None:
        if active[0]:
            raise _Deadline()

    start = time.monotonic()
    installed = False
    old_handler: object = signal.SIG_DFL
    old_delay, old_interval = 0.0, 0.0
    try:
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, 0)  # pause an outer timer
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        installed = True
        signal.setitimer(signal.ITIMER_REAL, timeout, _REFIRE_INTERVAL)
        try:
            return fn()
        finally:
            active[0] = False  # a plain store: no signal handler can run before it
    finally:
        active[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        if installed:
            # getsignal() is None for a handler not installed from Python: fall back to the default
            signal.signal(signal.SIGALRM, signal.SIG_DFL if old_handler is None else old_handler)  # type: ignore[arg-type]
        if old_delay > 0:
            left = old_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), old_interval)


def _check_here(pred: str, gold: str, timeout: float) -> EquivResult:
    """Check in this (main) thread under a SIGALRM timer."""
    try:
        _math_verify()  # import and warm up outside the time limit
        equal = _call_with_alarm(lambda: _compare(pred, gold), timeout)
    except _Deadline:
        return _TIMEOUT
    except Exception as e:  # math-verify/sympy bugs must never crash a run
        return EquivResult(False, "error", f"{type(e).__name__}: {e}"[:300])
    return _EQUIVALENT if equal else _NOT_EQUIVALENT


def _can_use_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


# ------------------------------------------------------------------------------------------------
# Worker processes (checks off the main thread)
# ------------------------------------------------------------------------------------------------


def _read_line(fd: int, deadline: float) -> bytes | None:
    """Read one newline-terminated message from `fd` before `deadline`; None on timeout.

    Raises EOFError when the other side closed the pipe.
    """
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise EOFError("worker closed its output")
        buf += chunk
    return buf


class _Worker:
    """A child Python process that answers equivalence checks over pipes, one at a time."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from prmbench.math_grading import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.out_fd = self.proc.stdout.fileno()
        try:
            line = _read_line(self.out_fd, time.monotonic() + WORKER_START_TIMEOUT)
        except EOFError:
            line = None
        if line is None or json.loads(line).get("ready") is not True:
            self.kill()
            raise RuntimeError(f"math grading worker did not start within {WORKER_START_TIMEOUT:.0f} s")

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def check(self, pred: str, gold: str, timeout: float) -> EquivResult:
        """Send one check; kill the worker and report a timeout if it overruns its deadline."""
        assert self.proc.stdin is not None
        msg = json.dumps({"pred": pred, "gold": gold, "timeout": timeout}).encode() + b"\n"
        self.proc.stdin.write(msg)
        self.proc.stdin.flush()
        line = _read_line(self.out_fd, time.monotonic() + timeout + max(_HARD_GRACE_MIN, 0.1 * timeout))
        if line is None:
            self.kill()
            return _TIMEOUT
        return EquivResult.from_json(json.loads(line))

    def kill(self) -> None:
        """Stop the process now."""
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f is not None:
                    f.close()
            except Exception:
                pass

    def close(self) -> None:
        """Ask the process to exit (end of input), killing it if it lingers."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except Exception:
            pass
        self.kill()


_pool_lock = threading.Lock()
_pool_idle: list[_Worker] = []
_pool_pid = os.getpid()


def _acquire_worker() -> _Worker:
    global _pool_pid, _pool_idle
    with _pool_lock:
        if _pool_pid != os.getpid():  # forked: the parent's pipes are not ours
            _pool_idle, _pool_pid = [], os.getpid()
        while _pool_idle:
            w = _pool_idle.pop()
            if w.alive():
                return w
            w.kill()
    return _Worker()


def _release_worker(w: _Worker) -> None:
    with _pool_lock:
        if _pool_pid == os.getpid() and w.alive() and len(_pool_idle) < _MAX_IDLE_WORKERS:
            _pool_idle.append(w)
            return
    w.close()


@atexit.register
def _shutdown_pool() -> None:
    with _pool_lock:
        workers = list(_pool_idle) if _pool_pid == os.getpid() else []
        _pool_idle.clear()
    for w in workers:
        w.close()


def _check_in_worker(pred: str, gold: str, timeout: float) -> tuple[EquivResult, bool]:
    """Check in a pooled worker process; also says whether the verdict may be memoised
    (not when the worker itself failed: that says nothing about the answers)."""
    try:
        w = _acquire_worker()
    except Exception as e:
        return EquivResult(False, "error", f"cannot start grading worker: {type(e).__name__}: {e}"[:300]), False
    try:
        res = w.check(pred, gold, timeout)
    except Exception as e:  # broken pipe, worker crash, bad reply
        w.kill()
        return EquivResult(False, "error", f"grading worker failed: {type(e).__name__}: {e}"[:300]), False
    if w.alive():
        _release_worker(w)
    return res, True


def _worker_main() -> None:
    """Entry point of a worker process: JSON lines in (pred, gold, timeout), verdicts out."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    sys.stdout = sys.stderr
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    _math_verify()  # import and warm up before saying ready
    out.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            res = _check_here(str(req["pred"]), str(req["gold"]), float(req["timeout"]))
        except Exception as e:
            res = EquivResult(False, "error", f"bad request: {e}"[:300])
        out.write(json.dumps(res.to_json()).encode() + b"\n")


# ------------------------------------------------------------------------------------------------
# Public checks
# ------------------------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: "OrderedDict[tuple[str, str, float], EquivResult]" = OrderedDict()


def check_equiv(pred: str, gold: str, timeout: float = 5.0) -> EquivResult:
    """Whether the extracted answer `pred` equals the gold answer `gold`, with the reason.

    Both are bare LaTeX answers (no ``\\boxed``). Equal `answer_key`s short-cut to
    "equivalent"; otherwise math-verify decides, bounded by `timeout` seconds (see the module
    docstring for how, in and off the main thread). Never raises for odd inputs: failures give
    reason "error", overruns "timeout", both with ``equal=False``.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
    pred, gold = str(pred), str(gold)
    if not pred.strip() or not gold.strip():
        return _NOT_EQUIVALENT
    if answer_key(pred) == answer_key(gold):
        return _EQUIVALENT
    key = (pred, gold, float(timeout))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    if _can_use_alarm():
        res, memo = _check_here(pred, gold, timeout), True
    else:
        res, memo = _check_in_worker(pred, gold, timeout)
    if memo:
        with _cache_lock:
            _cache[key] = res
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return res


def is_equiv(pred: str, gold: str, timeout: float = 5.0) -> bool:
    """Whether the extracted answer `pred` is equivalent to the gold answer `gold`.

    The boolean of `check_equiv`: timeouts and errors count as not equivalent. The gold answer is
    the reference side of math-verify's asymmetric comparison.
    """
    return check_equiv(pred, gold, timeout).equal
