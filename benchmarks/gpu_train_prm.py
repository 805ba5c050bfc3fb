"""GPU check of `train-prm` on a real-size backbone configuration: a randomly initialised Qwen2 0.5B.

    PRMBENCH_DATA_DIR=../shared/data PRMBENCH_MODELS_DIR=../shared/models \\
        python benchmarks/gpu_train_prm.py --out /tmp/gpu-check            # on a GPU machine
    python benchmarks/gpu_train_prm.py --out /tmp/cpu-check --tiny --steps 6   # the same path on a CPU

The backbone has Qwen2.5-0.5B's shape (24 layers, hidden 896, 14 heads / 2 KV heads, MLP 4864,
tied embeddings, the real Qwen2.5 tokenizer: ~494M parameters) with random weights (no weights
are downloadable here). It trains on ProcessBench GSM8K with the defaults a user gets on a GPU
(bf16 where supported, plus --gradient-checkpointing), evaluates processbench_gsm8k on the live
model every `--eval-every` steps, then checks what a user relies on:

1. the loss falls (mean of the first vs the last logged windows);
2. the record's FLOPs are 6 x parameters x tokens and the tokens match the log;
3. the checkpoint loads as `value_head_prm:DIR` and scores every step of `--score-rows` solutions;
4. `--resume` with a larger --max-steps continues from the last checkpoint to the new step count.

It prints one JSON report (also written to $OUT/gpu_train_prm.json when $OUT is set): seconds,
steps/s, tokens/s, peak GPU memory, the losses and each check's result. Exit status 1 when a check
fails. `--tiny` swaps in a 2-layer hidden-64 model of the same architecture, for a quick CPU run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from prmbench.testing import build_tiny_model

QWEN2_0P5B = dict(layers=24, hidden=896, heads=14, kv_heads=2, intermediate=4864, tie_embeddings=True,
                  max_position_embeddings=32768)
TINY = dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128, tie_embeddings=True,
            max_position_embeddings=32768)


def main() -> int:
    """Build, train, check; print the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="work folder (backbone and run are written here)")
    ap.add_argument("--tiny", action="store_true", help="a tiny model of the same architecture (CPU check)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--eval-every", type=int, default=30)
    ap.add_argument("--eval-limit", type=int, default=64)
    ap.add_argument("--score-rows", type=int, default=64)
    args = ap.parse_args()

    import torch

    from prmbench.reward_models.value_head_prm import ValueHeadPRM
    from prmbench.scoring import read_sample_rows
    from prmbench.training.train_prm import TrainConfig, train_prm

    data_dir = Path(os.environ.get("PRMBENCH_DATA_DIR", "../shared/data"))
    models_dir = Path(os.environ.get("PRMBENCH_MODELS_DIR", "../shared/models"))
    gsm8k = data_dir / "processbench" / "gsm8k.json"
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                    "config": "tiny" if args.tiny else "qwen2-0.5b", "checks": {}}

    t0 = time.perf_counter()
    backbone = build_tiny_model(work / "backbone", tokenizer_dir=models_dir / "Qwen__Qwen2.5-7B-Instruct",
                                seed=0, **(TINY if args.tiny else QWEN2_0P5B))
    report["build_seconds"] = round(time.perf_counter() - t0, 1)

    run = work / "run"
    cfg = dict(backbone=str(backbone), data=f"processbench:{gsm8k}", output=str(run), max_steps=args.steps,
               batch_size=args.batch_size, max_length=args.max_length, gradient_checkpointing=True,
               eval_task="processbench_gsm8k", eval_every=args.eval_every, eval_limit=args.eval_limit,
               save_every=max(1, args.steps // 2), log_every=max(1, args.steps // 10), pretrain_tokens=0,
               learning_rate=1e-4)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    train_prm(TrainConfig(**cfg))
    seconds = time.perf_counter() - t0
    record = json.loads((run / "prmbench_training.json").read_text())
    log = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    k = max(1, len(losses) // 3)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    report.update(train_seconds=round(seconds, 1), steps=record["steps"], steps_per_second=round(record["steps"] / seconds, 3),
                  tokens_per_second=round(record["train_tokens"] / seconds, 1), num_parameters=record["num_parameters"],
                  train_tokens=record["train_tokens"], train_flops=record["train_flops"],
                  bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
                  peak_gpu_memory_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
                  loss_first=first, loss_last=last, evals=[{"step": r["step"], "f1": r["eval"].get("f1"),
                                                            "auroc": r["eval"].get("auroc")} for r in log if "eval" in r])
    report["checks"]["loss_falls"] = last < first
    report["checks"]["flops_6nd"] = (record["train_flops"] == 6 * record["num_parameters"] * record["train_tokens"]
                                     and [r for r in log if "loss" in r][-1]["train_tokens"] == record["train_tokens"])

    rows = [r for _, r in read_sample_rows(gsm8k)][: args.score_rows]
    rm = ValueHeadPRM(str(run), max_length=args.max_length * 4)
    t0 = time.perf_counter()
    outs = rm.score_items(None, [(r["problem"], r["steps"]) for r in rows])
    report["score_seconds"] = round(time.perf_counter() - t0, 2)
    report["checks"]["checkpoint_scores_every_step"] = all(
        len(o.step_scores) == len(r["steps"]) and all(0.0 <= s <= 1.0 for s in o.step_scores) for o, r in zip(outs, rows))
    rm.close()

    more = args.steps + max(1, args.steps // 5)
    train_prm(TrainConfig(**{**cfg, "max_steps": more, "resume": True}))
    again = json.loads((run / "prmbench_training.json").read_text())
    report["checks"]["resume_extends"] = again["steps"] == more and again["train_tokens"] > record["train_tokens"]

    report["ok"] = all(report["checks"].values())
    text = json.dumps(report, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_train_prm.json").write_text(text + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
