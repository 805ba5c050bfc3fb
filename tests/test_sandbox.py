"""The sandbox API: stdin/stdout through real pipes, statuses, exit codes, isolation choice.

Hostile programs (bombs, escapes) are in test_sandbox_hostile.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from prmbench.errors import ConfigError
from sandbox_support import BWRAP_SKIP, assert_no_processes_of

from prmbench.sandbox import ExecResult, Limits, Sandbox
from prmbench.sandbox import sandbox as sandbox_mod
from prmbench.sandbox import slot as slot_mod

IS_ROOT = os.geteuid() == 0


needs_bwrap = pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))


def _python_usable_by_other_uids() -> str | None:
    """An interpreter whose stdlib a dropped (non-root) uid can read, for levels without bwrap."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if not os.path.exists(candidate):
            continue
        out = subprocess.run(
            [candidate, "-I", "-c", "import os; print(os.path.dirname(os.__file__))"], capture_output=True, text=True
        )
        stdlib = out.stdout.strip()
        if out.returncode != 0 or not stdlib:
            continue
        path, ok = stdlib, True
        while path != "/":  # every ancestor must be world-searchable
            if not os.stat(path).st_mode & 0o001:
                ok = False
                break
            path = os.path.dirname(path)
        if ok:
            return candidate
    return None


OTHER_PYTHON = _python_usable_by_other_uids()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("PPid:")).split()[1])


@pytest.fixture(scope="module")
def sb():
    """One auto-isolation sandbox with two slots, shared by this module's tests."""
    with Sandbox(workers=2) as box:
        yield box


@pytest.fixture
def no_probe_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolate the level-probe cache so forced failures do not leak into other tests."""
    monkeypatch.setattr(sandbox_mod, "_probe_cache", {})


# --------------------------------------------------------------------------- basics


def test_ok_program_reads_stdin_and_writes_stdout(sb: Sandbox) -> None:
    r = sb.run("name = input()\nprint(f'hello {name}')\nimport sys\nprint('warn', file=sys.stderr)", stdin="world\n")
    assert isinstance(r, ExecResult)
    assert (r.status, r.exit_code, r.stdout, r.stderr) == ("ok", 0, "hello world\n", "warn\n")
    assert r.ok and 0 <= r.wall_seconds < 5


def test_large_stdin_and_stdout_through_pipes(sb: Sandbox) -> None:
    data = "".join(f"{i}\n" for i in range(200_000))  # ~1.3 MB, more than any pipe buffer
    r = sb.run("import sys\nlines = sys.stdin.read().split()\nprint(sum(map(int, lines)))\nprint('y' * 300000)", stdin=data)
    assert r.status == "ok", r
    first, second = r.stdout.split("\n")[:2]
    assert int(first) == sum(range(200_000)) and second == "y" * 300000


def test_program_sees_its_stdin_fd_as_a_pipe(sb: Sandbox) -> None:
    r = sb.run("import os, stat\nprint(all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (0, 1, 2)))")
    assert r.stdout == "True\n"


def test_runtime_error_has_traceback(sb: Sandbox) -> None:
    r = sb.run("def f():\n    return 1 / 0\nf()\n")
    assert (r.status, r.exit_code) == ("runtime_error", 1)
    assert 'File "<program>", line 2, in f' in r.stderr and "return 1 / 0" in r.stderr
    assert r.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "worker" not in r.stderr  # no sandbox frames in the traceback


def test_syntax_error(sb: Sandbox) -> None:
    r = sb.run("def f(:\n  pass")
    assert (r.status, r.exit_code) == ("runtime_error", 1)
    assert "SyntaxError" in r.stderr


@pytest.mark.parametrize(
    ("program", "status", "code"),
    [
        ("import sys; sys.exit(0)", "ok", 0),
        ("import sys; sys.exit()", "ok", 0),
        ("import sys; sys.exit(3)", "runtime_error", 3),
        ("import os; os._exit(7)", "runtime_error", 7),
        ("import sys; sys.exit('bad input')", "runtime_error", 1),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "runtime_error", -signal.SIGKILL),
        ("raise KeyboardInterrupt", "runtime_error", 1),
    ],
)
def test_exit_codes(sb: Sandbox, program: str, status: str, code: int) -> None:
    r = sb.run(program)
    assert (r.status, r.exit_code) == (status, code), r
    if "bad input" in program:
        assert "bad input" in r.stderr


def test_main_guard_and_fresh_state_per_run(sb: Sandbox) -> None:
    r = sb.run("import json\njson.marker = 1\nopen('f.txt', 'w').write('x')\nif __name__ == '__main__':\n    print('main')")
    assert r.stdout == "main\n"
    for _ in range(2):  # whichever slot it lands on: no module state, no files from the last run
        r = sb.run("import json, os\nprint(hasattr(json, 'marker'), os.listdir('.'))")
        assert r.stdout == "False []\n", r


def test_trusted_programs_are_compiled_once_per_worker(sb: Sandbox) -> None:
    program = "import sys\nprint(int(sys.stdin.read()) * 2)\n"
    for n in (1, 2, 3):  # the first run sends the source, later ones only its key
        r = sb.run(program, str(n), trusted=True)
        assert (r.status, r.stdout) == ("ok", f"{2 * n}\n")
    for slot in sb._slots:
        slot.kill()  # a fresh worker has no compiled code: the source is sent again
    assert sb.run(program, "21", trusted=True).stdout == "42\n"


def test_output_is_flushed_on_exit_and_with_threads(sb: Sandbox) -> None:
    program = (
        "import threading, time\n"
        "def work():\n    time.sleep(0.05)\n    print('thread done')\n"
        "threading.Thread(target=work).start()\nprint('main done', end='')\n"
    )
    r = sb.run(program)
    assert r.status == "ok" and "thread done" in r.stdout and "main done" in r.stdout


def test_isolation_level_is_recorded(sb: Sandbox) -> None:
    r = sb.run("print(1)")
    assert r.isolation == sb.isolation
    assert sb.isolation == "bwrap" and not sb.weak  # never weaker than bwrap without allow_unsafe


def test_limits_and_results_are_frozen_and_validated() -> None:
    limits = Limits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.wall_seconds = 1  # type: ignore[misc]
    for bad in ({"wall_seconds": 0}, {"memory_mb": -1}, {"max_output_bytes": "big"}, {"max_open_files": 3}):
        with pytest.raises(ConfigError, match="Limits"):
            Limits(**bad)  # type: ignore[arg-type]


def test_bad_arguments_are_config_errors(sb: Sandbox) -> None:
    with pytest.raises(ConfigError, match="unknown sandbox isolation 'docker'"):
        Sandbox(isolation="docker")
    with pytest.raises(ConfigError, match="workers"):
        Sandbox(workers=0)
    with pytest.raises(ConfigError, match="Limits"):
        sb.run("pass", limits={"wall_seconds": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="str"):
        sb.run(b"print(1)")  # type: ignore[arg-type]


def test_run_many_uses_all_slots_and_keeps_order(sb: Sandbox) -> None:
    programs = [f"import time\ntime.sleep(0.3)\nprint({i} * int(input()))" for i in range(4)]
    start = time.monotonic()
    results = sb.run_many(programs, stdins=["10"] * 4)
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == [f"{i * 10}\n" for i in range(4)]
    assert elapsed < 1.1  # 4 x 0.3 s on 2 slots in parallel: about 0.6 s, not 1.2 s


def test_per_run_overhead_is_small(sb: Sandbox) -> None:
    sb.run("pass")  # warm
    n = 20
    start = time.monotonic()
    for _ in range(n):
        assert sb.run("pass").status == "ok"
    per_run = (time.monotonic() - start) / n
    print(f"sandbox per-run overhead: {per_run * 1000:.1f} ms ({sb.isolation})")
    assert per_run < 0.25  # a few ms when idle; loose for a loaded 2-core machine


def test_close_stops_workers_and_refuses_runs() -> None:
    box = Sandbox(workers=1)
    with box:
        assert box.run("print(2)").stdout == "2\n"
        uids = box.uids
    with pytest.raises(ConfigError, match="closed"):
        box.run("print(1)")
    box.close()  # twice is fine
    assert_no_processes_of(uids)


# --------------------------------------------------------------------------- isolation choice


def test_refuses_without_isolation_unless_allow_unsafe(monkeypatch: pytest.MonkeyPatch, no_probe_cache: None) -> None:
    real_probe = sandbox_mod.probe_level

    def only_rlimits(level: str, python: str, packages: tuple[str, ...] = ()) -> str | None:
        return real_probe(level, python, packages) if level == "rlimits" else f"{level} forced unavailable by the test"

    monkeypatch.setattr(sandbox_mod, "probe_level", only_rlimits)
    with pytest.raises(ConfigError) as info:
        Sandbox(workers=1)
    message = str(info.value)
    assert "no usable sandbox isolation" in message and "bwrap forced unavailable" in message
    assert "apt-get install -y bubblewrap" in message and "allow_unsafe=True" in message
    with pytest.raises(ConfigError, match="weak"):
        Sandbox(isolation="rlimits", workers=1)
    if OTHER_PYTHON is None:
        pytest.skip("no interpreter readable by a non-root uid, so the rlimits level cannot run here")
    with pytest.warns(RuntimeWarning, match="weak 'rlimits'"):
        weak = Sandbox(workers=1, allow_unsafe=True, python=OTHER_PYTHON)
    with weak:
        assert weak.isolation == "rlimits" and weak.weak
        r = weak.run("import os\nprint(os.getuid() != 0, input())", stdin="hi")
        assert (r.status, r.stdout, r.isolation) == ("ok", "True hi\n", "rlimits")


def test_explicit_bwrap_fails_clearly_when_unusable(monkeypatch: pytest.MonkeyPatch, no_probe_cache: None) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(ConfigError) as info:
        Sandbox(isolation="bwrap", workers=1)
    assert "'bwrap' is not usable here" in str(info.value) and "apt-get install -y bubblewrap" in str(info.value)


def test_no_level_at_all_refuses_even_with_allow_unsafe(monkeypatch: pytest.MonkeyPatch, no_probe_cache: None) -> None:
    monkeypatch.setattr(sandbox_mod, "probe_level", lambda level, python, packages=(): "forced unavailable")
    with pytest.raises(ConfigError, match="rlimits: forced unavailable"):
        Sandbox(workers=1, allow_unsafe=True)


@pytest.mark.skipif(not IS_ROOT, reason="unshare+uid needs root")
def test_weaker_levels_than_bwrap_only_when_asked_for(monkeypatch: pytest.MonkeyPatch, no_probe_cache: None) -> None:
    """Without bwrap, "auto" refuses even where unshare+uid works (it sees the host filesystem);
    naming it needs allow_unsafe too, and it warns."""
    real_probe = sandbox_mod.probe_level
    probed: list[str] = []

    def no_bwrap(level: str, python: str, packages: tuple[str, ...] = ()) -> str | None:
        probed.append(level)
        return "bwrap forced unavailable by the test" if level == "bwrap" else real_probe(level, python, packages)

    monkeypatch.setattr(sandbox_mod, "probe_level", no_bwrap)
    with pytest.raises(ConfigError, match="no usable sandbox isolation .tried bwrap: bwrap forced unavailable"):
        Sandbox(workers=1)
    assert probed == ["bwrap"]  # the weak levels are not even tried
    with pytest.raises(ConfigError, match="'unshare\\+uid' is weak .*host filesystem is visible.*allow_unsafe=True"):
        Sandbox(isolation="unshare+uid", workers=1)
    if OTHER_PYTHON is None:
        pytest.skip("no interpreter readable by a non-root uid, so unshare+uid cannot run here")
    with pytest.warns(RuntimeWarning, match="weak 'unshare\\+uid' level: .*host filesystem is visible"):
        box = Sandbox(workers=1, allow_unsafe=True, python=OTHER_PYTHON)
    with box:
        assert box.isolation == "unshare+uid" and box.weak
        assert box.run("print(1)").isolation == "unshare+uid"  # recorded on every result


@pytest.mark.skipif(not IS_ROOT or OTHER_PYTHON is None, reason="unshare+uid needs root and a world-readable interpreter")
def test_unshare_uid_level_isolates_uid_network_and_tmp(tmp_path) -> None:
    host_file = tmp_path / "host.txt"
    host_file.write_text("host")
    with pytest.warns(RuntimeWarning, match="weak 'unshare\\+uid'"):
        box = Sandbox(isolation="unshare+uid", workers=1, python=OTHER_PYTHON, allow_unsafe=True)
    with box:
        program = (
            "import os, socket\n"
            "print(os.getuid(), os.listdir('/tmp'))\n"
            "s = socket.socket()\n"
            "try:\n    s.connect(('127.0.0.1', 9))\nexcept OSError as e:\n    print('net', e.errno)\n"
        )
        r = box.run(program)
        assert r.status == "ok" and r.isolation == "unshare+uid", r
        uid_text, rest = r.stdout.split(" ", 1)
        assert int(uid_text) in box.uids and rest.startswith("[]")  # private, empty /tmp
        assert "net" in r.stdout
        r = box.run(f"print(open({str(host_file)!r}).read())")
        assert r.status == "runtime_error" and "host" not in r.stdout
        for shared in ("/var/tmp", "/dev/shm", "/run/lock"):  # world-writable on the host
            if os.path.isdir(shared):
                r = box.run(f"open({shared + '/prmbench-pwned'!r}, 'w').write('x')")
                assert r.status == "runtime_error", r
                assert not os.path.exists(shared + "/prmbench-pwned")


def test_outer_deadline_kills_an_unresponsive_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the worker itself stops answering, the host kills the whole slot at wall + grace."""
    if not IS_ROOT:
        pytest.skip("finding the worker by its dedicated uid needs root")
    monkeypatch.setattr(slot_mod, "GRACE_SECONDS", 0.5)
    with Sandbox(workers=1) as box:
        assert box.run("pass").status == "ok"
        (uid,) = box.uids
        (worker_pid,) = slot_mod.processes_of_uid(uid)
        os.kill(worker_pid, signal.SIGSTOP)
        start = time.monotonic()
        r = box.run("print('never')", limits=Limits(wall_seconds=0.5))
        assert r.status == "timeout" and "killed the worker slot" in r.message
        assert time.monotonic() - start < 3
        assert slot_mod.processes_of_uid(uid) == []
        assert box.run("print('back')").stdout == "back\n"  # a fresh worker took over


def test_program_runs_as_a_fresh_main_module(sb: Sandbox) -> None:
    program = (
        "import pickle, sys\n"
        "def f(x):\n    return x + 1\n"
        "g = pickle.loads(pickle.dumps(f))\n"
        "print(g(1), sys.modules['__main__'].f is f, sys.argv, 'main' in dir(sys.modules['__main__']))\n"
    )
    r = sb.run(program)
    assert r.stdout == "2 True ['<program>'] False\n", r


def test_unicode_and_binary_output(sb: Sandbox) -> None:
    r = sb.run("s = input()\nprint(s[::-1], len(s))\nimport sys\nsys.stdout.flush()\nsys.stdout.buffer.write(b'\\xff\\n')", stdin="héllo ✓\n")
    assert r.status == "ok" and r.stdout == "✓ olléh 7\n\ufffd\n", r


def test_a_worker_that_dies_mid_run_gives_sandbox_error_then_recovers() -> None:
    if not IS_ROOT:
        pytest.skip("finding the worker by its dedicated uid needs root")
    import threading

    with Sandbox(workers=1) as box:
        assert box.run("pass").ok
        (uid,) = box.uids
        results: list[ExecResult] = []
        thread = threading.Thread(target=lambda: results.append(box.run("import time\ntime.sleep(5)")))
        thread.start()
        for _ in range(200):  # wait until the program runs (worker + child under the uid)
            if len(slot_mod.processes_of_uid(uid)) >= 2:
                break
            time.sleep(0.01)
        pids = slot_mod.processes_of_uid(uid)
        (worker,) = [pid for pid in pids if _parent(pid) not in pids]  # the child's parent is the worker
        os.kill(worker, signal.SIGKILL)
        thread.join(10)
        assert results and results[0].status == "sandbox_error" and "worker died" in results[0].message
        assert slot_mod.processes_of_uid(uid) == []
        assert box.run("print('recovered')").stdout == "recovered\n"
