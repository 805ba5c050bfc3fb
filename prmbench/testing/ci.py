"""Inputs of the CI regression fixture (results/ci/*.yaml), built deterministically offline.

`prepare_ci_inputs(DIR, data_dir)` (also `python -m prmbench.testing ci-inputs DIR`, which
scripts/regression_check.sh runs with DIR = runs/ci/inputs) writes what the fixture's run
configurations name by relative path:

| file | used by | what |
| --- | --- | --- |
| `math_pool.jsonl` | results/ci/math_pool.yaml | MATH-500 replay pool of real solutions (prmbench.testing.pools; 30 problems x 8 samples, seed 0) |
| `tiny_qwen_prm/` | results/ci/presets/ci.yaml (`ci_tiny_prm`) | tiny random qwen_prm checkpoint (prmbench.testing.tiny_rm, weight seed 0, real Qwen2.5 tokenizer derivative) |
| `code_pool.jsonl` | results/ci/code_pool.yaml | the real CodeGen-16B HumanEval pool (`pools/` of the shared data folder), cut to `CODE_TASKS` x their first 8 samples |

Every input is a pure function of the shared data and models folders and these settings, so a
run of a fixture configuration gives the same records on every machine and every time. The code
tasks are chosen so that no verdict depends on the machine's speed: tasks whose stored samples
all finish far inside their time limits (measured: under 0.2 s of judging per sample, limits of
at least 1 s per input); left out are HumanEval/15 (a correct sample needs about 13 s for the
plus inputs, so its verdict flips under load) and the later tasks (/24, /25, /31 have
samples near or over their limits).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from prmbench.errors import DataError
from prmbench.jsonl import read_jsonl_rows

#: Where scripts/regression_check.sh builds the inputs (the fixture configurations name this path).
INPUTS_DIR = Path("runs/ci/inputs")
MATH_POOL = "math_pool.jsonl"
MATH_POOL_SETTINGS = {"problems": 30, "samples": 8, "seed": 0}
TINY_PRM = "tiny_qwen_prm"
TINY_PRM_SETTINGS = {"family": "qwen_prm", "seed": 0, "layers": 2, "hidden": 64}
CODE_POOL = "code_pool.jsonl"
#: The shared pool the code fixture replays (relative to the shared data folder).
CODE_POOL_SOURCE = Path("pools") / "humaneval_codegen16b_codet_verdicts.jsonl.gz"
#: The code fixture's tasks (speed-independent verdicts, see the module docstring) and samples per task.
CODE_TASKS = tuple(f"HumanEval/{i}" for i in (*range(15), *range(16, 21)))
CODE_SAMPLES = 8


def prepare_ci_inputs(out_dir: str | Path, data_dir: str | Path, models_dir: str | Path | None = None) -> dict[str, Path]:
    """Build (or rebuild) every input of the CI fixture in `out_dir`; returns them by file name.

    `data_dir` is the shared data folder (math500/, processbench/, pools/); `models_dir` the shared
    models folder for the tiny checkpoint's tokenizer (default: PRMBENCH_MODELS_DIR or ../shared/models).
    DataError when a shared file is missing.
    """
    from prmbench.testing.pools import build_math500_pool
    from prmbench.testing.tiny_rm import build_tiny_rm

    out, data = Path(out_dir), Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = (data / CODE_POOL_SOURCE).resolve()
    if not source.is_file():
        raise DataError(f"{data / CODE_POOL_SOURCE} not found: the CI fixture replays the shared CodeGen-16B pool "
                        "(pass the shared data folder: --data-dir or PRMBENCH_DATA_DIR)")
    build_math500_pool(data, out / MATH_POOL, **MATH_POOL_SETTINGS)
    prm = out / TINY_PRM
    shutil.rmtree(prm, ignore_errors=True)
    kwargs = {k: v for k, v in TINY_PRM_SETTINGS.items() if k != "family"}
    try:
        build_tiny_rm(prm, TINY_PRM_SETTINGS["family"], models_dir=models_dir, **kwargs)
    except FileNotFoundError as e:
        raise DataError(str(e)) from e
    write_code_pool(source, out / CODE_POOL)
    return {MATH_POOL: out / MATH_POOL, TINY_PRM: prm, CODE_POOL: out / CODE_POOL}


def write_code_pool(source: Path, out: Path) -> None:
    """Write the rows of `CODE_TASKS` from the CodeGen-16B pool `source`, each with its first
    `CODE_SAMPLES` completions in stored order (rows: task_id, completions); DataError when one is missing."""
    rows = {str(row.get("task_id")): row for _, row in read_jsonl_rows(source, what="code pool")}
    missing = [t for t in CODE_TASKS if t not in rows]
    if missing:
        raise DataError(f"{source} has no row for {', '.join(missing)}; is it the CodeGen-16B HumanEval pool?")
    with open(out, "w") as f:
        for t in CODE_TASKS:
            f.write(json.dumps({"task_id": t, "completions": list(rows[t]["completions"][:CODE_SAMPLES])}) + "\n")
