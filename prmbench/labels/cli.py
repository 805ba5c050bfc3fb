"""The `prmbench label` and `prmbench label-merge` subcommands (wired into prmbench.cli)."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

from prmbench.errors import ConfigError
from prmbench.registry import parse_args_string

EPILOG_LABEL = """examples:
  # the instant synthetic environment: 20 problems, 4 rollouts per step prefix
  prmbench label --task synthetic --policy synthetic --rollouts 4 --limit 20 --output labels.jsonl
  # OmegaPRM-style binary search for the first error (about log2(steps) prefixes per solution)
  prmbench label --task math500 --policy hf:Qwen/Qwen2.5-Math-1.5B-Instruct --rollouts 8 --search binary
  # label stored solutions (rows: problem_id + completion, or problem_id + steps)
  prmbench label --task math500 --policy hf:/models/m --samples gens.jsonl --rollouts 8 --output l.jsonl
  # ASLAF: three annotators, keep the solutions whose first error all three place alike
  prmbench label --task math500 --policy hf:/models/a,hf:/models/b,hf:/models/c --consensus all --output l.jsonl
  # on a Ray cluster: chunks of 16 solutions per worker, each worker owning the annotators (pip install 'prmbench[ray]')
  prmbench label --task math500 --policy hf:Qwen/Qwen2.5-Math-7B-Instruct --rollouts 16 --executor ray --ray-address auto
  # continue an interrupted labelling (same flags)
  prmbench label ... --output labels.jsonl --resume

Beside LABELS.jsonl: LABELS.meta.json (config, totals, label FLOPs), LABELS.dropped.jsonl
(solutions the consensus rule dropped) and LABELS.cache.sqlite (generations and grades).
Read the labels back with FMT:PATH = prmbench:LABELS.jsonl (soft: prmbench_soft:LABELS.jsonl).
"""

EPILOG_MERGE = """examples:
  prmbench label-merge prmbench:own.jsonl prm800k:phase2_train.jsonl math_shepherd:ms.jsonl \\
      --equal-size 400000 --output mix.jsonl
  prmbench label-merge processbench:gsm8k.json processbench:math.json --output pb.jsonl

Sources are FMT:PATH with FMT in prm800k, math_shepherd, processbench, prmbench, prmbench_soft.
Duplicates (same question and steps) are kept once (the first source wins); --equal-size N then
takes N solutions from each source (seeded by --seed). The output is a prmbench label file.
"""


def cmd_label(args: argparse.Namespace) -> int:
    """Monte Carlo step labels for a task's problems."""
    from prmbench.cli import _registry
    from prmbench.labels.labelling import LabelJob, LabelSpec, file_sha256
    from prmbench.runner import split_list

    if args.samples and not Path(args.samples).is_file():
        raise ConfigError(f"--samples {args.samples} does not exist")
    spec = LabelSpec(
        task=args.task, policies=split_list(args.policy, "--policy"), rollouts=args.rollouts, search=args.search,
        consensus=args.consensus, solutions=args.solutions, samples=args.samples,
        samples_sha256=file_sha256(args.samples) if args.samples else None, limit=args.limit, seed=args.seed,
        temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
        task_args=parse_args_string(args.task_args), policy_args=parse_args_string(args.policy_args),
        data_file=args.data_file, include_paths=tuple(args.include_path or ()),
    )
    spec.validate()
    registry = _registry(spec.include_paths)
    output = Path(args.output or f"labels/labels-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.jsonl")
    from prmbench.executors import executor_config

    executor = executor_config(args)
    try:
        LabelJob(spec, registry, output, resume=args.resume, executor=executor).run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: every labelled solution is kept in {output}; continue with the same command "
              f"plus --resume", file=sys.stderr)
        return 130
    return 0


def cmd_label_merge(args: argparse.Namespace) -> int:
    """Mix label sets with deduplication and equal-size sampling."""
    from prmbench.labels.merge import merge_labels

    if args.equal_size is not None and args.equal_size < 1:
        raise ConfigError(f"--equal-size must be a positive integer (got {args.equal_size})")
    merge_labels(args.sources, Path(args.output), equal_size=args.equal_size, seed=args.seed)
    return 0


def add_parsers(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """Add `label` and `label-merge` to the subcommand parsers."""
    p = sub.add_parser("label", help="Monte Carlo step labels (rollouts graded by the task; ASLAF consensus)",
                       epilog=EPILOG_LABEL, formatter_class=fmt)
    p.add_argument("--task", required=True, help="task whose problems and grader are used (prmbench ls tasks)")
    p.add_argument("--policy", required=True, metavar="SPEC[,SPEC..]",
                   help="annotator policies (prmbench ls policies); the first also writes the solutions unless --samples")
    p.add_argument("--rollouts", type=int, default=8, metavar="K", help="rollouts per step prefix (default 8)")
    p.add_argument("--search", default="linear", help="linear (every prefix, default) | binary (first error in "
                   "O(log steps) prefixes, OmegaPRM)")
    p.add_argument("--consensus", default="none", help="none (default: keep all, record agreement) | all (keep only "
                   "solutions whose first error every annotator places alike)")
    p.add_argument("--samples", metavar="FILE.jsonl", help="label these solutions (rows: problem_id + completion or steps)")
    p.add_argument("--solutions", type=int, default=1, metavar="N", help="solutions per problem from the policy (default 1)")
    p.add_argument("--limit", type=int, metavar="K", help="only the first K problems of the task")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0): same seed and config -> same labels")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--top-p", type=float, dest="top_p", default=1.0, help="nucleus sampling (default 1.0)")
    p.add_argument("--max-tokens", type=int, dest="max_tokens", default=512, help="max tokens per sample (default 512)")
    p.add_argument("--output", metavar="LABELS.jsonl", help="label file, sidecar files beside it "
                   "(default labels/labels-DATE-TIME.jsonl)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted labelling in --output (same flags)")
    p.add_argument("--data-file", metavar="PATH", help="local data file for the task")
    p.add_argument("--task-args", metavar="K=V[,K=V]", help="task arguments")
    p.add_argument("--policy-args", metavar="K=V[,K=V]", help="arguments for every annotator policy")
    p.add_argument("--include-path", action="append", metavar="DIR", help="folder of your own YAML presets (repeatable)")
    from prmbench.executors import add_executor_arguments

    add_executor_arguments(p)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("label-merge", help="mix label sets (own, PRM800K, Math-Shepherd, ProcessBench) with dedup",
                       epilog=EPILOG_MERGE, formatter_class=fmt)
    p.add_argument("sources", nargs="+", metavar="FMT:PATH")
    p.add_argument("--equal-size", type=int, dest="equal_size", metavar="N", help="take N solutions from each source")
    p.add_argument("--seed", type=int, default=0, help="seed of the --equal-size sample (default 0)")
    p.add_argument("--output", required=True, metavar="FILE.jsonl")
    p.set_defaults(func=cmd_label_merge)
