"""Deterministic replay pools for MATH-500 built from real solutions (for tests and CI).

No multi-sample generation pool of a real policy on MATH-500 is available offline, so this
builds one from real text: each problem's reference solution (correct), the model-written
ProcessBench solutions to the same problem where there are any (real model outputs, correct or
not, matched by problem text), and wrong variants of the reference whose final \\boxed{} answer is
replaced by one of two per-problem distractors (so wrong answers can agree, as they do in real
pools). Which samples are right is drawn per problem with a seeded generator, so the pool's
pass@k, majority-vote and best-of-N outcomes are known and stable. It is a test fixture for the
selection machinery, not a model's outputs: never report results on it as a model's accuracy.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from prmbench.errors import DataError

_BOXED = re.compile(r"\\boxed\{")


def _replace_last_boxed(text: str, new: str) -> str | None:
    """The text with the content of its last \\boxed{...} replaced, or None when it has none."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    start = starts[-1]
    depth = 1
    i = start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    if depth:
        return None
    return text[:start] + new + text[i - 1 :]


def build_math500_pool(data_dir: str | Path, out: str | Path, problems: int = 30, samples: int = 8,
                       seed: int = 0, only_with_model_solutions: bool = True) -> dict[str, Any]:
    """Write a replay pool (JSONL rows: problem_id, completions, correct) and return a summary.

    `only_with_model_solutions` keeps the MATH-500 problems that have ProcessBench solutions
    (108 of 500), so every problem's pool holds real model-written text.
    """
    data_dir = Path(data_dir)
    math500 = data_dir / "math500" / "test.jsonl"
    pb_file = data_dir / "processbench" / "math.json"
    if not math500.is_file():
        raise DataError(f"{math500} not found: point --data-dir (or PRMBENCH_DATA_DIR) at the shared data folder")
    rows = [json.loads(line) for line in math500.read_text().splitlines() if line.strip()]
    model_solutions: dict[str, list[tuple[str, bool]]] = {}
    if pb_file.is_file():
        by_question = {r["problem"].strip(): r["unique_id"] for r in rows}
        for item in json.loads(pb_file.read_text()):
            uid = by_question.get(item["problem"].strip())
            if uid:
                model_solutions.setdefault(uid, []).append(("\n\n".join(item["steps"]), bool(item["final_answer_correct"])))
    elif only_with_model_solutions:
        raise DataError(f"{pb_file} not found; it supplies the model-written solutions of the pool")
    chosen = [r for r in rows if not only_with_model_solutions or r["unique_id"] in model_solutions][:problems]
    n_correct_total = 0
    with open(out, "w") as f:
        for r in chosen:
            rng = random.Random(f"{seed}:{r['unique_id']}")
            p_right = rng.choice([0.0, 0.15, 0.35, 0.6, 0.85])
            distractors = [f"{r['answer']} + 1", f"2\\left({r['answer']}\\right)"]
            real = model_solutions.get(r["unique_id"], [])
            comps, labels = [], []
            for k in range(samples):
                if k < len(real):  # real model-written solutions, labelled by ProcessBench
                    text, ok = real[k]
                elif rng.random() < p_right:
                    text, ok = r["solution"], True
                else:
                    wrong = _replace_last_boxed(r["solution"], distractors[rng.random() < 0.3])
                    text, ok = (wrong, False) if wrong is not None else (r["solution"], True)
                comps.append(text)
                labels.append(ok)
            order = list(range(samples))
            rng.shuffle(order)
            comps, labels = [comps[i] for i in order], [labels[i] for i in order]
            n_correct_total += sum(labels)
            f.write(json.dumps({"problem_id": r["unique_id"], "completions": comps, "correct": labels}) + "\n")
    return {"problems": len(chosen), "samples": samples, "correct_fraction": n_correct_total / max(1, len(chosen) * samples)}
