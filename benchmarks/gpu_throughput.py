"""GPU benchmark: tokens per second of the hf backend at K=1 vs K=64 rows decoded together.

What `--concurrency` buys on a GPU: K problems searched at once hand the hf policy K rows per
decoding step instead of one. This script builds a random model of a real configuration
(`--size 0.5b`: Qwen2.5-0.5B's published architecture, 24 layers, hidden 896, 14 heads / 2 KV
heads, MLP 4864, tied embeddings, with the real Qwen2.5 tokenizer from ../shared/models; about
0.49B parameters), then, for each K, decodes one sample for each of K MATH-500 prompts in one
`HFPolicy.generate` call (batch_size K) and reports generated tokens per second, median of
`--repeats` after a warm-up. Random weights decode as fast as trained ones; eos is rare, so rows
run to `--max-tokens`.

Usage (on a machine with CUDA):

    PRMBENCH_DATA_DIR=../shared/data python benchmarks/gpu_throughput.py --device cuda --dtype bf16

`--size tiny --device cpu` runs the same code path on a 2-layer model (what the test suite and a
CPU-only machine can check); its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from prmbench.testing.tiny_model import build_tiny_model

SIZES = {
    # Qwen2.5-0.5B (config.json of Qwen/Qwen2.5-0.5B): the architecture only; weights are random.
    "0.5b": dict(layers=24, hidden=896, heads=14, kv_heads=2, intermediate=4864, tie_embeddings=True,
                 max_position_embeddings=32768),
    "tiny": dict(layers=2, hidden=64),
}
TOKENIZER = "Qwen__Qwen2.5-7B-Instruct"  # the Qwen2.5 family shares one tokenizer


def measure(policy, requests, repeats: int) -> tuple[float, int]:
    """Median seconds of one generate call over `requests` and the tokens it generated."""
    policy.generate(requests[:1])  # warm-up (kernels, allocator)
    times, tokens = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = policy.generate(requests)
        _sync(policy.device)
        times.append(time.perf_counter() - t0)
        tokens = sum(g.completion_tokens for gens in out for g in gens)
    return statistics.median(times), tokens


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run(size: str, device: str, dtype: str, ks: list[int], max_tokens: int, repeats: int, work: Path) -> dict:
    """Build the model, measure every K; the figures as a dict (also printed as JSON)."""
    from prmbench.cache import Cache
    from prmbench.context import GenParams, ModelCalls
    from prmbench.policies.hf import HFPolicy
    from prmbench.tasks.math500 import Math500Task

    models = Path(os.environ.get("PRMBENCH_MODELS_DIR", "../shared/models"))
    data = Path(os.environ.get("PRMBENCH_DATA_DIR", "../shared/data"))
    tok = models / TOKENIZER if size != "tiny" else None
    t0 = time.perf_counter()
    model_dir = build_tiny_model(work / f"model-{size}", tokenizer_dir=tok, seed=0, **SIZES[size])
    built = time.perf_counter() - t0
    task = Math500Task(data_file=str(data / "math500" / "test.jsonl"))
    problems = task.load()[: max(ks)]
    result: dict = {"size": size, "device": device, "dtype": dtype, "max_tokens": max_tokens, "build_seconds": built}
    for k in ks:
        policy = HFPolicy(str(model_dir), device=device, dtype=dtype, batch_size=k)
        calls = ModelCalls(task, policy, Cache(None), GenParams(max_tokens=max_tokens), 0)
        requests = [calls.request(p) for p in problems[:k]]
        seconds, tokens = measure(policy, requests, repeats)
        result[f"k{k}"] = {"seconds": seconds, "generated_tokens": tokens, "tokens_per_second": tokens / seconds}
        result["num_parameters"] = policy.num_parameters
        policy.close()
    if len(ks) == 2:
        a, b = (result[f"k{k}"]["tokens_per_second"] for k in ks)
        result["ratio"] = b / a
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--k", default="1,64", help="rows decoded together, comma list (default 1,64)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ks = [int(x) for x in args.k.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.size, args.device, args.dtype, ks, args.max_tokens, args.repeats, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
