"""Hostile programs against the real bwrap sandbox.

Each test checks that the attack is contained and scored as a failure status, that the
host is unchanged, that no process of the sandbox uids is left over, and that the next run
in the same slot still works.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from sandbox_support import BWRAP_SKIP, assert_no_processes_of

from prmbench.sandbox import ExecResult, Limits, Sandbox
from prmbench.sandbox.slot import processes_of_uid

IS_ROOT = os.geteuid() == 0
FAILURES = ("runtime_error", "timeout", "memory", "output_limit")


pytestmark = pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))

QUICK = Limits(wall_seconds=3, cpu_seconds=2, memory_mb=256, max_processes=8, max_output_bytes=100_000)


@pytest.fixture(scope="module")
def sb():
    """One bwrap sandbox with a single slot, so every 'next run' reuses the attacked slot."""
    with Sandbox(isolation="bwrap", workers=1) as box:
        assert box.isolation == "bwrap"
        yield box


def leftovers(sb: Sandbox) -> list[int]:
    """Processes of the sandbox uids other than the worker itself (one per slot)."""
    stray = []
    for uid in sb.uids:
        pids = processes_of_uid(uid)
        # The worker is the one whose parent is not under the same uid (its parent is bwrap).
        for pid in pids:
            with open(f"/proc/{pid}/status") as f:
                ppid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
            if ppid in pids:
                stray.append(pid)
        if len(pids) - len(stray) > 1:
            stray.extend(pids)
    return stray


def assert_contained(sb: Sandbox, r: ExecResult, statuses: tuple[str, ...] = FAILURES) -> None:
    """The run failed as expected, nothing is left running, and the slot still works."""
    assert r.status in statuses, r
    assert r.isolation == "bwrap"
    if IS_ROOT:
        assert leftovers(sb) == []
    after = sb.run("print(sum(range(10)))")
    assert (after.status, after.stdout) == ("ok", "45\n"), after


def test_fork_bomb(sb: Sandbox) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    start = time.monotonic()
    r = sb.run(bomb, limits=Limits(wall_seconds=2, max_processes=8))
    assert time.monotonic() - start < 6
    assert_contained(sb, r)


def test_process_limit_caps_forks(sb: Sandbox) -> None:
    program = (
        "import os, time\nn = 0\n"
        "for _ in range(50):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\nraise SystemExit(1)\n"
    )
    r = sb.run(program, limits=Limits(wall_seconds=5, max_processes=6))
    assert int(r.stdout) <= 5  # itself plus at most 5 more
    assert_contained(sb, r)


def test_memory_bomb(sb: Sandbox) -> None:
    r = sb.run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", limits=QUICK)
    assert r.status == "memory" and "MemoryError" in r.stderr
    assert_contained(sb, r)
    r = sb.run("s = 'x' * (10**10)", limits=QUICK)  # one huge allocation
    assert_contained(sb, r, ("memory",))


def test_infinite_loop_hits_cpu_limit(sb: Sandbox) -> None:
    start = time.monotonic()
    r = sb.run("while True:\n    pass\n", limits=Limits(wall_seconds=10, cpu_seconds=1))
    assert r.status == "timeout" and "CPU" in r.message
    assert time.monotonic() - start < 5
    assert_contained(sb, r)


def test_sleep_hits_wall_limit(sb: Sandbox) -> None:
    start = time.monotonic()
    r = sb.run("import time\nprint('started', flush=True)\ntime.sleep(60)\n", limits=Limits(wall_seconds=1))
    elapsed = time.monotonic() - start
    assert r.status == "timeout" and r.exit_code is None and 1 <= elapsed < 3
    assert r.stdout == "started\n"  # output so far is kept
    assert_contained(sb, r)


def test_huge_output_is_capped(sb: Sandbox) -> None:
    start = time.monotonic()
    r = sb.run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", limits=QUICK)
    assert r.status == "output_limit" and len(r.stdout) <= QUICK.max_output_bytes
    assert len(r.stdout) > 0 and time.monotonic() - start < 2.5
    assert_contained(sb, r)
    r = sb.run("import sys\nwhile True:\n    sys.stderr.write('e' * 65536)\n", limits=QUICK)
    assert r.status == "output_limit" and len(r.stderr) <= QUICK.max_output_bytes
    assert_contained(sb, r)


def test_big_file_is_capped(sb: Sandbox) -> None:
    r = sb.run("open('big', 'wb').write(b'x' * (64 * 1024 * 1024))", limits=Limits(max_file_mb=4))
    assert "File too large" in r.stderr
    assert_contained(sb, r)


def test_writing_outside_the_sandbox_fails(sb: Sandbox, tmp_path: Path) -> None:
    targets = [tmp_path / "pwned.txt", Path("/root/pwned.txt"), Path("/usr/pwned.txt"), Path("/etc/pwned.txt")]
    targets += [Path("/dev/shm/prmbench-pwned"), Path("/var/tmp/prmbench-pwned"), Path("/dev/prmbench-pwned")]
    targets.append(Path(os.__file__).parent / "pwned.py")  # the interpreter's own stdlib
    for target in targets:
        assert not target.exists()
        r = sb.run(f"open({str(target)!r}, 'w').write('owned')")
        assert r.status == "runtime_error" and ("Error" in r.stderr), r
        assert not target.exists(), f"sandbox wrote {target}"
        assert_contained(sb, r)
    r = sb.run(f"import os\nos.makedirs({str(tmp_path / 'a' / 'b')!r})\nprint(os.listdir({str(tmp_path)!r}))")
    assert os.listdir(tmp_path) == []  # only the sandbox's private /tmp got the directories
    assert_contained(sb, r, ("ok",) + FAILURES)


def test_reading_the_host_home_fails(sb: Sandbox, tmp_path: Path) -> None:
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    secret = home / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    r = sb.run(f"print(open({str(secret)!r}).read())")
    assert r.status == "runtime_error" and "TOP-SECRET-TOKEN" not in r.stdout + r.stderr
    assert_contained(sb, r)
    # The real home directory: nothing of the host's /root is visible inside.
    r = sb.run("import os\nfor p in ('/root', '/home', '/work', '/etc'):\n    print(p, sorted(os.listdir(p)) if os.path.isdir(p) else None)")
    listing = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert listing["/home"] == "None"
    # Only the interpreter's own folders are bound (a virtual environment may live beside the
    # project): the project's files next to it stay invisible.
    repo_file = Path(__file__).resolve().parents[1] / "README.md"
    r = sb.run(f"import os\nprint(os.path.exists({str(repo_file)!r}))")
    assert r.stdout.strip() == "False"
    assert set(eval(listing["/etc"])) <= {"ld.so.cache", "ld.so.conf", "localtime"}
    r = sb.run("print(open('/etc/shadow').read())")
    assert_contained(sb, r)


def test_network_connect_to_host_port_fails(sb: Sandbox) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        program = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hi')\nprint('CONNECTED')"
        r = sb.run(program, limits=QUICK)
        assert r.status == "runtime_error" and "CONNECTED" not in r.stdout
        assert "ConnectionRefusedError" in r.stderr or "OSError" in r.stderr
        with pytest.raises(socket.timeout):
            server.accept()  # nothing reached the host's listener
        assert_contained(sb, r)
        r = sb.run("import socket\nprint(socket.getaddrinfo('example.com', 80))", limits=QUICK)
        assert_contained(sb, r)
    finally:
        server.close()


def test_setsid_grandchild_is_killed(sb: Sandbox) -> None:
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1)\n"
        "        open('/tmp/marker', 'w').write('survived')\n"
        "        print('grandchild survived', flush=True)\n"
        "    os._exit(0)\n"
        "time.sleep(0.1)\n"
        "print('parent done')\n"
    )
    start = time.monotonic()
    r = sb.run(program, limits=QUICK)
    assert r.status == "ok" and r.stdout == "parent done\n"
    assert time.monotonic() - start < 1  # the run does not wait for the detached grandchild
    if IS_ROOT:
        assert leftovers(sb) == []
    # A run lasting past the grandchild's wake-up time sees no marker in /tmp.
    r = sb.run("import os, time\ntime.sleep(1.3)\nprint(os.listdir('/tmp'))")
    assert r.stdout == "[]\n", r


def test_program_cannot_escape_the_sandbox_uid_or_hurt_the_worker(sb: Sandbox) -> None:
    program = (
        "import os, signal\n"
        "status = open('/proc/self/status').read()\n"
        "caps = {l.split(':')[0]: int(l.split()[1], 16) for l in status.splitlines() if l.startswith('Cap')}\n"
        "print(os.getuid(), os.getgid(), os.getgroups(), caps)\n"
        "try:\n    os.setuid(0)\n    print('SETUID OK')\nexcept PermissionError:\n    print('no setuid')\n"
        "try:\n    os.chown('.', 0, 0)\n    print('CHOWN OK')\nexcept PermissionError:\n    print('no chown')\n"
        "try:\n    open('/proc/1/environ').read()\n    print('READ WORKER')\nexcept OSError:\n    print('no worker access')\n"
        "os.kill(1, signal.SIGKILL)\n"  # the worker is pid 1 of the namespace: ignored
        "try:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    print('nothing to kill')\n"
        "raise SystemExit(3)\n"
    )
    r = sb.run(program, limits=QUICK)
    uid_text, gid_text, rest = r.stdout.split(" ", 2)
    assert int(uid_text) != 0 and int(gid_text) != 0
    if IS_ROOT:
        assert int(uid_text) in sb.uids
    assert "CapEff': 0" in rest and "CapPrm': 0" in rest and "CapBnd': 0" in rest
    assert "no setuid" in r.stdout and "no chown" in r.stdout and "no worker access" in r.stdout
    assert "nothing to kill" in r.stdout and r.exit_code == 3  # the worker is out of reach
    assert_contained(sb, r, ("runtime_error",))


def test_files_do_not_leak_between_runs(sb: Sandbox) -> None:
    program = (
        "import os\nos.makedirs('/tmp/d/e')\nopen('/tmp/d/e/f', 'w').write('x')\nos.chmod('/tmp/d/e', 0)\n"
        "os.chmod('/tmp/d', 0)\nos.symlink('/usr', '/tmp/link')\np = '/tmp/deep'\nos.mkdir(p)\n"
        "for _ in range(300):\n    p += '/x'\n    os.mkdir(p)\n"
    )
    r = sb.run(program)
    assert r.status == "ok", r
    r = sb.run("import os\nprint(os.listdir('/tmp'))")
    assert r.stdout == "[]\n"


def test_no_stray_processes_after_close() -> None:
    box = Sandbox(isolation="bwrap", workers=1)
    r = box.run("import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(60)\ntime.sleep(60)", limits=Limits(wall_seconds=0.5))
    assert r.status == "timeout"
    uids = box.uids
    box.close()
    assert_no_processes_of(uids)


_SCAN_MEMORY = """
import hashlib, sys
prefix, target = {prefix!r}, {target!r}
found = False
with open('/proc/self/maps') as f:
    maps = f.read().splitlines()
with open('/proc/self/mem', 'rb', 0) as mem:
    for line in maps:
        parts = line.split()
        if 'r' not in parts[1] or line.endswith(('[vvar]', '[vsyscall]', '[vvar_vclock]')):
            continue
        lo, hi = (int(x, 16) for x in parts[0].split('-'))
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except (OSError, OverflowError, ValueError):
            continue
        i = data.find(prefix)
        while i != -1:
            if hashlib.sha256(data[i:i + 32]).hexdigest() == target:
                found = True
            i = data.find(prefix, i + 1)
print(found)
"""


def test_no_data_from_earlier_runs_in_a_later_childs_memory(sb: Sandbox) -> None:
    """Program, stdin and output never pass through the worker that later children fork from."""
    import hashlib
    import secrets

    prefix = b"PRMBX7q"
    token = prefix + secrets.token_hex(16)[:25].encode()
    scan = _SCAN_MEMORY.format(prefix=prefix, target=hashlib.sha256(token).hexdigest())
    # Positive control: the scanner finds the token when it is in its own memory (its stdin).
    r = sb.run("import sys\nkeep = sys.stdin.buffer.read()\n" + scan, stdin=token.decode())
    assert r.stdout == "True\n", r
    # Another run handles the token: as program text, stdin, stdout and stderr.
    r = sb.run(f"import sys\ns = sys.stdin.read()\nprint(s * 3)\nprint(s, file=sys.stderr)\nt = {token.decode()!r}", stdin=token.decode())
    assert r.status == "ok" and token.decode() in r.stdout
    r = sb.run(scan)
    assert r.stdout == "False\n", r


def test_program_cannot_fake_a_sandbox_error(sb: Sandbox) -> None:
    """Only the sandbox's own failures are "sandbox_error"; a program can just fail."""
    program = (
        "import os\n"
        "for fd in range(3, 64):\n"
        "    try:\n        os.write(fd, b'S fake setup failure')\n    except OSError:\n        pass\n"
        "os._exit(125)\n"
    )
    r = sb.run(program)
    assert (r.status, r.exit_code) == ("runtime_error", 125), r
    assert_contained(sb, r)
