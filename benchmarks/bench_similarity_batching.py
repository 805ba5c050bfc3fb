"""`prmbench similarity`: batched per-text gradients (one backward pass per batch, linear-layer hooks)
vs one text per backward pass (the weights' own gradients), same model, same texts, same numbers.

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/bench_similarity_batching.py [--texts 32] [--batch-size 8]

Texts: ProcessBench GSM8K solutions (set a) and MATH solutions (set b), steps joined by blank
lines. Model: a tiny random Qwen2 (4 layers, hidden 64, the shared Qwen2.5 tokenizer when
present). Reports the median of `--repeats` paired timings, their ratio and the largest
difference between the two results (per layer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from prmbench.similarity import activation_similarity, load_reference_model
from prmbench.testing import build_tiny_model


def main() -> None:
    """Time both paths and print the comparison as JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=32, help="texts per set")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args()
    data = Path(os.environ.get("PRMBENCH_DATA_DIR", "../shared/data")) / "processbench"
    models = Path(os.environ.get("PRMBENCH_MODELS_DIR", "../shared/models")) / "Qwen__Qwen2.5-7B-Instruct"

    def texts(name: str) -> list[str]:
        rows = json.loads((data / name).read_text())[: args.texts]
        return ["\n\n".join(r["steps"]) for r in rows]

    a, b = texts("gsm8k.json"), texts("math.json")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model(Path(tmp) / "m", tokenizer_dir=models if models.is_dir() else None, seed=0,
                                layers=4, hidden=64)
        model, tok = load_reference_model(str(path), device="cpu")
        times: dict[str, list[float]] = {"batched": [], "per_text": []}
        results = {}
        for _ in range(args.repeats):
            for name, per_text in (("batched", False), ("per_text", True)):
                t0 = time.perf_counter()
                results[name] = activation_similarity(model, tok, a, b, batch_size=args.batch_size,
                                                      max_length=args.max_length, per_text=per_text)
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    diff = max(abs(results["batched"].per_layer[k] - results["per_text"].per_layer[k]) for k in results["batched"].per_layer)
    print(json.dumps({"texts_per_set": args.texts, "batch_size": args.batch_size, "seconds": med,
                      "speedup_batched": round(med["per_text"] / med["batched"], 2), "S": results["batched"].S,
                      "max_per_layer_diff": diff}, indent=2))


if __name__ == "__main__":
    main()
