"""LiveCodeBench task: data decoding, sandboxed grading of stdin and functional problems,
comparators, date windows, offline errors and evaluate-samples rows.

The fixture tests/fixtures/livecodebench_mini.jsonl is hand-written in the upstream
code_generation_lite schema (JSON-string public tests; hidden tests both as a plain JSON string
and in the base64(zlib(pickle(JSON))) encoding). Its problems:

==========  ==========  ==========  ======================================  ===========
id          platform    date        task                                    hidden enc.
==========  ==========  ==========  ======================================  ===========
abc900_a    atcoder     2023-08-12  print A + B (stdin)                     pickled
3901        leetcode    2024-03-02  minimumCost(nums, k): sum of k smallest plain JSON
1999A       codeforces  2024-09-15  print a / b, 10 decimals (stdin)        pickled
abc950_b    atcoder     2025-01-18  print 1..N one per line (stdin)         pickled
3977        leetcode    2024-12-07  sortedSquares(nums) (functional)        pickled
abc990_a    atcoder     2025-03-08  print S reversed (stdin)                pickled
==========  ==========  ==========  ======================================  ===========
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
import zlib
from collections import OrderedDict
from pathlib import Path

import pytest

from prmbench.errors import ConfigError, DataError
from prmbench.evaluate import evaluate_samples
from prmbench.tasks.lcb_data import decode_test_cases, encode_private_tests, release_files
from prmbench.tasks.lcb_grading import stdio_equal_float, stdio_equal_strict, value_equal_float, value_equal_strict
from prmbench.tasks.livecodebench import LiveCodeBenchTask

FIXTURE = Path(__file__).parent / "fixtures" / "livecodebench_mini.jsonl"
ALL_IDS = ["abc900_a", "3901", "1999A", "abc950_b", "3977", "abc990_a"]


def fenced(code: str) -> str:
    return f"First read the input.\n\nThen compute.\n\n```python\n{code.strip()}\n```\n"


SUM_OK = "a, b = map(int, input().split())\nprint(a + b)"
MIN_COST_OK = """
class Solution:
    def minimumCost(self, nums: List[int], k: int) -> int:
        print("debug output must not matter")
        return sum(sorted(nums)[:k])
"""


@pytest.fixture(scope="module")
def task():
    t = LiveCodeBenchTask(data_file=str(FIXTURE), timeout=2.0, workers=2)
    yield t
    t.close()


@pytest.fixture(scope="module")
def problems(task):
    return {p.id: p for p in task.load()}


# -- data -------------------------------------------------------------------------------------
def test_load_fixture(problems, task):
    assert list(problems) == ALL_IDS
    p = problems["3901"]
    assert p.task == "livecodebench" and p.question.startswith("You are given an integer array")
    assert p.metadata["testtype"] == "functional" and p.metadata["func_name"] == "minimumCost"
    assert p.metadata["public_tests"] == [{"input": "[5, 1, 3]\n2", "output": "4", "testtype": "functional"}]
    assert problems["abc900_a"].metadata["testtype"] == "stdin"
    assert problems["abc900_a"].metadata["contest_date"] == "2023-08-12"
    assert p.reference.startswith("sha256:")
    # hidden tests are decoded by the task, from both encodings, and never put into the Problem
    assert [t.output for t in task.hidden_tests(p)] == ["7", "9", "35"]  # plain JSON string
    hidden = task.hidden_tests(problems["abc900_a"])  # base64(zlib(pickle(json)))
    assert hidden[1].output == "2000000000000000000\n"
    assert "2000000000000000000" not in json.dumps([p.question, dict(problems["abc900_a"].metadata)])


def test_registered():
    from prmbench.plugins import build_registry

    assert "livecodebench" in build_registry(strict=True).names("task")


def test_release_tags():
    assert release_files("release_v1") == ["test.jsonl"]
    assert release_files("release_v5") == [f"test{s}.jsonl" for s in ("", "2", "3", "4", "5")]
    assert release_files("v6") == ["test6.jsonl"]
    assert release_files("v2_v3") == ["test2.jsonl", "test3.jsonl"]
    with pytest.raises(ConfigError, match="release_v1 .. release_v6"):
        LiveCodeBenchTask(data_file=str(FIXTURE), release_version="release_v9")


def test_decoding_roundtrip_and_malformed():
    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert decode_test_cases(encode_private_tests(tests), "x") == decode_test_cases(json.dumps(tests), "x")
    assert decode_test_cases(tests, "x")[0].output == "2\n"  # re-encoded copies with real lists
    with pytest.raises(DataError, match="neither JSON nor base64"):
        decode_test_cases("not base64 !!", "row 3")
    with pytest.raises(DataError, match="not zlib"):
        decode_test_cases(base64.b64encode(b"plain bytes").decode(), "row 3")


class _Evil:
    """Unpickling this would run a shell command (the classic __reduce__ attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _encode_obj(obj) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(DataError, match="refused to unpickle.*(posix|os)"):
        decode_test_cases(_encode_obj(_Evil(marker)), "row 1 private_test_cases")
    assert not marker.exists()
    # every global is refused, even a harmless one
    with pytest.raises(DataError, match="refused global collections.OrderedDict"):
        decode_test_cases(_encode_obj(OrderedDict(a=1)), "row 1")


def test_malicious_pickle_in_data_file_refused_at_grading(tmp_path):
    marker = tmp_path / "pwned"
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    rows[0]["private_test_cases"] = _encode_obj(_Evil(marker))
    path = tmp_path / "evil.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = LiveCodeBenchTask(data_file=str(path))
    p = t.load()[0]  # loading keeps hidden tests encoded
    with pytest.raises(DataError, match=r"evil.jsonl:1 private_test_cases: refused to unpickle"):
        t.grade(p, fenced(SUM_OK))
    assert not marker.exists()
    t.close()


def test_date_window():
    def ids(**kw):
        return [p.id for p in LiveCodeBenchTask(data_file=str(FIXTURE), **kw).load()]

    assert ids(start_date="2024-01-01", end_date="2024-12-31") == ["3901", "1999A", "3977"]
    assert ids(start_date="2024-12-07") == ["abc950_b", "3977", "abc990_a"]  # inclusive start
    assert ids(end_date="2024-03-02") == ["abc900_a", "3901"]  # inclusive end
    with pytest.raises(ConfigError, match="after end_date"):
        LiveCodeBenchTask(data_file=str(FIXTURE), start_date="2025-01-01", end_date="2024-01-01")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        LiveCodeBenchTask(data_file=str(FIXTURE), start_date="last year")
    with pytest.raises(DataError, match="none of the 6 problems"):
        ids(start_date="2030-01-01")


def test_offline_without_data_names_both_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("PRMBENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        LiveCodeBenchTask().load()
    msg = str(e.value)
    assert "--data-file livecodebench=PATH" in msg and "PRMBENCH_DATA_DIR" in msg and "HF_HUB_OFFLINE" in msg
    assert "livecodebench/release_v5.jsonl" in msg
    monkeypatch.delenv("PRMBENCH_DATA_DIR")
    with pytest.raises(DataError, match="PRMBENCH_DATA_DIR is not set"):
        LiveCodeBenchTask().load()
    with pytest.raises(DataError, match="does not exist"):
        LiveCodeBenchTask(data_file=str(tmp_path / "missing.jsonl")).load()


def test_data_dir_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("PRMBENCH_DATA_DIR", str(tmp_path))
    (tmp_path / "livecodebench").mkdir()
    shutil.copy(FIXTURE, tmp_path / "livecodebench" / "release_v2.jsonl")
    assert len(LiveCodeBenchTask(release_version="release_v2").load()) == 6
    # the upstream per-release files, combined for a cumulative tag
    lines = FIXTURE.read_text().splitlines()
    (tmp_path / "livecodebench" / "test.jsonl").write_text("\n".join(lines[:3]) + "\n")
    (tmp_path / "livecodebench" / "test2.jsonl").write_text("\n".join(lines[3:]) + "\n")
    (tmp_path / "livecodebench" / "release_v2.jsonl").unlink()
    assert [p.id for p in LiveCodeBenchTask(release_version="release_v2").load()] == ALL_IDS
    assert [p.id for p in LiveCodeBenchTask(release_version="v2").load()] == ALL_IDS[3:]


# -- grading ----------------------------------------------------------------------------------
def test_correct_stdin_solution(task, problems):
    g = task.grade(problems["abc900_a"], fenced(SUM_OK))
    assert g.correct, g.details
    d = g.details
    assert d["reason"] == "passed" and d["first_failing"] is None
    assert d["public"]["passed"] == 2 and d["private"]["passed"] == 3 and d["private"]["status"] == "passed"
    assert d["isolation"] in ("bwrap", "unshare+uid", "rlimits") and d["comparator"] == "strict"


def test_stdin_is_a_real_pipe(task, problems):
    code = """
import os, stat, sys
assert stat.S_ISFIFO(os.fstat(0).st_mode), "stdin is not a pipe"
assert sys.stdin.fileno() == 0
data = b""
while True:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    data += chunk
a, b = map(int, data.split())
os.write(1, f"{a + b}\\n".encode())
"""
    g = task.grade(problems["abc900_a"], fenced(code))
    assert g.correct, g.details


def test_wrong_answer_public_and_hidden(task, problems):
    g = task.grade(problems["abc900_a"], fenced("a, b = map(int, input().split())\nprint(a - b)"))
    assert not g.correct
    assert g.details["reason"] == "wrong_answer"
    assert g.details["first_failing"] == {"kind": "public", "index": 0}
    assert g.details["private"]["status"] == "not_run"
    # passes the public examples by hard-coding them, fails the first hidden test
    cheat = "s = input()\nprint({'2 3': 5, '10 20': 30}.get(s.strip(), 42))"
    g = task.grade(problems["abc900_a"], fenced(cheat))
    assert not g.correct and g.details["public"]["status"] == "passed"
    assert g.details["first_failing"] == {"kind": "private", "index": 0}
    # ... yet selection signals see only the public examples
    assert task.public_pass_fraction(problems["abc900_a"], cheat) == 1.0


def test_runtime_error_and_timeout(task, problems):
    g = task.grade(problems["abc950_b"], fenced("n = int(input())\nprint(1 // (n - n))"))
    assert not g.correct and g.details["reason"] == "runtime_error"
    assert "ZeroDivisionError" in g.details["public"]["message"]
    g = task.grade(problems["abc950_b"], fenced("while True:\n    pass"))
    assert not g.correct and g.details["reason"] == "timeout", g.details
    assert g.details["first_failing"] == {"kind": "public", "index": 0}


def test_no_code(task, problems):
    g = task.grade(problems["abc900_a"], "  \n")
    assert not g.correct and g.details["reason"] == "no_code"
    # text without a fence is taken as the program (CodeTask's rule): prose fails to run
    g = task.grade(problems["abc900_a"], "I think the answer is 5.")
    assert not g.correct and g.details["reason"] == "runtime_error"
    assert "SyntaxError" in g.details["public"]["message"]


def test_sys_exit_ends_program_normally(task, problems):
    # upstream swallows SystemExit; output printed before it counts
    code = "import sys\nn = int(input())\nprint('\\n'.join(map(str, range(1, n + 1))))\nsys.exit(3)"
    assert task.grade(problems["abc950_b"], fenced(code)).correct


def test_functional_solution_method(task, problems):
    g = task.grade(problems["3901"], fenced(MIN_COST_OK))
    assert g.correct, g.details
    assert g.details["private"]["passed"] == 3
    g = task.grade(problems["3901"], fenced(MIN_COST_OK.replace("[:k]", "[:k - 1]")))
    assert not g.correct and g.details["reason"] == "wrong_answer"
    g = task.grade(problems["3901"], fenced("class Solution:\n    def other(self):\n        return 1"))
    assert not g.correct and g.details["reason"] == "runtime_error"
    assert "missing_method" in g.details["public"]["message"]
    # a returned tuple counts as a list, as upstream
    sq = "class Solution:\n    def sortedSquares(self, nums):\n        return tuple(sorted(x * x for x in nums))"
    assert task.grade(problems["3977"], fenced(sq)).correct
    # a set is not a list
    sq_set = "class Solution:\n    def sortedSquares(self, nums):\n        return set(x * x for x in nums)"
    assert not task.grade(problems["3977"], fenced(sq_set)).correct


def test_strict_vs_float_comparator(task, problems):
    code = "a, b = map(int, input().split())\nprint(a / b)"  # 0.3333333333333333, expected 0.3333333333
    strict = task.grade(problems["1999A"], fenced(code))
    assert not strict.correct and strict.details["reason"] == "wrong_answer"
    loose = LiveCodeBenchTask(data_file=str(FIXTURE), comparator="float", timeout=2.0, workers=2)
    try:
        p = {q.id: q for q in loose.load()}["1999A"]
        g = loose.grade(p, fenced(code))
        assert g.correct and g.details["comparator"] == "float"
        assert loose.config()["comparator"] == "float"
    finally:
        loose.close()
    exact = "a, b = map(int, input().split())\nprint(f'{a / b:.10f}')"
    assert task.grade(problems["1999A"], fenced(exact)).correct
    with pytest.raises(ConfigError, match="unknown comparator"):
        LiveCodeBenchTask(comparator="fuzzy")


def test_comparator_rules():
    # strict = upstream grade_stdio: stripped lines, exact text or equal Decimals, no tolerance
    assert stdio_equal_strict("5 \r\n", "5\n")
    assert stdio_equal_strict("1.0 2\n\n", "1 2.00")
    assert stdio_equal_strict("1e2", "100")
    assert stdio_equal_strict("1  2", "1 2")  # both lines parse as decimals
    assert not stdio_equal_strict("a  b", "a b")
    assert not stdio_equal_strict("0.3333333333333333", "0.3333333333")
    assert not stdio_equal_strict("1\n2", "1 2")
    assert not stdio_equal_strict("1\n\n2", "1\n2")
    assert not stdio_equal_strict("sNaN", "1")
    assert stdio_equal_float("0.3333333333333333", "0.3333333333")
    assert stdio_equal_float("a  b", "a b")
    assert not stdio_equal_float("0.334", "0.3333333333")
    assert value_equal_strict((1, 2), [1, 2]) and value_equal_strict(2.0, 2) and value_equal_strict(True, 1)
    assert not value_equal_strict(0.1 + 0.2, 0.3)
    assert value_equal_float(0.1 + 0.2, 0.3) and value_equal_float([(1.0000001, 2)], [[1, 2]])
    assert not value_equal_float([1, 2], [1, 2, 3])


def test_vote_keys_and_public_pass_fraction(task, problems):
    p = problems["abc900_a"]
    programs = [SUM_OK, "print(sum(map(int, input().split())))", "print(5)", "a, b = map(int, input().split())\nprint(a * b)"]
    keys = task.vote_keys(p, programs)
    assert keys[0] == keys[1] and len(set(keys)) == 3
    assert [task.public_pass_fraction(p, c) for c in programs] == [1.0, 1.0, 0.5, 0.0]
    assert task.public_pass_fraction(p, None) == 0.0


def test_evaluate_samples_rows(task, tmp_path):
    samples = tmp_path / "samples.jsonl"
    rows = [
        {"task_id": "abc900_a", "completion": fenced(SUM_OK)},
        {"task_id": "3901", "completion": fenced(MIN_COST_OK)},
        {"task_id": "abc990_a", "completion": fenced("print(input())")},
    ]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = list(evaluate_samples(task, samples))
    assert [r["correct"] for r in out] == [True, True, False]
    assert out[2]["details"]["reason"] == "wrong_answer" and out[0]["task_id"] == "abc900_a"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "nope", "completion": "x"}) + "\n")
    with pytest.raises(DataError, match="not in task"):
        list(evaluate_samples(task, bad))


def test_prompt(task, problems):
    sys_msg, user = task.prompt(problems["3901"])
    assert sys_msg.role == "system" and "```python" in sys_msg.content
    assert "def minimumCost(self, nums: List[int], k: int) -> int:" in user.content
    assert "standard input" in task.prompt(problems["abc900_a"])[1].content


def test_evaluate_samples_cli(tmp_path, capsys):
    from prmbench.cli import main

    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "abc990_a", "completion": fenced("print(input()[::-1])")}) + "\n"
                       + json.dumps({"problem_id": "3977", "completion": ""}) + "\n")
    out = tmp_path / "graded.jsonl"
    args = ["evaluate-samples", "--task", "livecodebench", "--data-file", str(FIXTURE), "--samples", str(samples),
            "--output", str(out), "--task-args", "workers=2,timeout=2"]
    assert main(args) == 0
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["correct"] for g in graded] == [True, False]
    assert graded[1]["details"]["reason"] == "no_code"
    assert "1 correct" in capsys.readouterr().err


def test_expected_outputs_never_enter_the_sandbox(task, problems):
    from prmbench.tasks.lcb_grading import functional_program, stdio_program

    programs_sent: set[str] = set()
    stdins_sent: list[str] = []
    real = task.sandbox.run_many

    def spy(programs, stdins, limits):
        stdins = list(stdins)
        programs_sent.update(programs)
        stdins_sent.extend(stdins)
        return real(programs, stdins, limits)

    task.sandbox.run_many = spy
    try:
        assert task.grade(problems["abc900_a"], fenced(SUM_OK)).correct
        assert task.grade(problems["3901"], fenced(MIN_COST_OK)).correct
    finally:
        del task.sandbox.run_many
    # the programs depend only on the candidate's code (and the method name) ...
    codes = [task.extract_answer(fenced(c)) for c in (SUM_OK, MIN_COST_OK)]
    assert programs_sent == {stdio_program(codes[0]), functional_program(codes[1], "minimumCost")}
    # ... and the sandbox is fed exactly the test inputs
    tests = [t for pid in ("abc900_a", "3901")
             for t in task.public_tests(problems[pid]) + task.hidden_tests(problems[pid])]
    assert sorted(stdins_sent) == sorted(t.input for t in tests)
    assert not any("2000000000000000000" in x for x in stdins_sent)


def test_is_a_code_task_for_exec_public_and_voting(task, problems):
    from prmbench.tasks.code_base import CodeTask
    from prmbench.reward_models.exec_public import ExecPublicRM

    assert isinstance(task, CodeTask) and task.domain == "code"
    p = problems["3977"]
    good = fenced("class Solution:\n    def sortedSquares(self, nums):\n        return sorted(x * x for x in nums)")
    bad = fenced("class Solution:\n    def sortedSquares(self, nums):\n        return nums")
    scores = ExecPublicRM().score(task, p, [task.split_steps(good), task.split_steps(bad)])
    assert [s.step_scores for s in scores] == [(1.0,), (0.0,)]
    assert task.config()["step_split"] == "blank_lines"


def test_sleeping_program_hits_wall_limit_and_memory_status(problems):
    t = LiveCodeBenchTask(data_file=str(FIXTURE), timeout=0.5, memory_mb=512, workers=1)
    try:
        p = {q.id: q for q in t.load()}["abc950_b"]
        g = t.grade(p, fenced("import time\ntime.sleep(60)"))
        assert not g.correct and g.details["reason"] == "timeout"
        g = t.grade(p, fenced("x = bytearray(2 * 1024 ** 3)\nprint(len(x))"))
        assert not g.correct and g.details["reason"] == "memory"
    finally:
        t.close()


def test_typed_results_from_the_sandbox(task):
    from prmbench.sandbox import Limits
    from prmbench.tasks.lcb_grading import Opaque, functional_program, parse_functional_stdout

    code = ("class Solution:\n    def f(self, a, b):\n        print('noise on stdout')\n"
            "        return (a + b, 10 ** 400, {(1, 2): frozenset([3])}, {'k': [1.5, None, True]}, object())\n")
    r = task.sandbox.run(functional_program(code, "f"), "[1, 2]\n[3]\n", Limits(wall_seconds=10))
    kind, value = parse_functional_stdout(r.stdout)
    assert kind == "ok" and "noise on stdout" in r.stderr
    assert value[:4] == [[1, 2, 3], 10 ** 400, {(1, 2): frozenset({3})}, {"k": [1.5, None, True]}]
    assert isinstance(value[4], Opaque) and value[4] != value[4]  # arbitrary objects equal nothing


def test_script_style_program_with_main_guard(task, problems):
    code = """
from __future__ import annotations
from dataclasses import dataclass
import sys


@dataclass
class Pair:
    a: int
    b: int


def main() -> None:
    p = Pair(*map(int, sys.stdin.readline().split()))
    print(p.a + p.b)


if __name__ == "__main__":
    main()
"""
    assert task.grade(problems["abc900_a"], fenced(code)).correct
