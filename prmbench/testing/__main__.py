"""Command line of prmbench's testing helpers.

`python -m prmbench.testing tiny-model DIR ...` builds a tiny random causal LM;
`python -m prmbench.testing tiny-rm --family F DIR` a tiny random reward-model checkpoint
(prmbench.testing.tiny_rm);
`python -m prmbench.testing math-pool OUT ...` writes a deterministic MATH-500 replay pool
(prmbench.testing.pools);
`python -m prmbench.testing ci-inputs DIR` builds the inputs of the CI regression fixture
(prmbench.testing.ci).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from prmbench.testing.tiny_model import ARCHS

EXAMPLES = """\
examples:
  # tiny Qwen2 with a small tokenizer trained on the spot (no files needed)
  python -m prmbench.testing tiny-model /tmp/tiny
  # tiny Qwen2 with the real Qwen2.5 tokenizer and chat template
  python -m prmbench.testing tiny-model /tmp/tiny-qwen --tokenizer ../shared/models/Qwen__Qwen2.5-7B-Instruct
  # a 4-layer Llama, other weights
  python -m prmbench.testing tiny-model /tmp/tiny-llama --arch llama --layers 4 --hidden 128 --seed 1
  # then use it as a policy
  prmbench run ... --policy hf:/tmp/tiny
  # a tiny reward-model checkpoint of a family's real architecture, then score with it
  python -m prmbench.testing tiny-rm --family qwen_prm /tmp/tiny-prm
  prmbench score --rm qwen_prm:/tmp/tiny-prm --samples ../shared/data/processbench/gsm8k.json
  # a MATH-500 replay pool of real solutions for tests and CI (needs the shared data folder)
  python -m prmbench.testing math-pool pool.jsonl --data-dir ../shared/data --problems 30 --samples 8
  # the inputs of the CI regression fixture (scripts/regression_check.sh does this)
  python -m prmbench.testing ci-inputs runs/ci/inputs --data-dir ../shared/data
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prmbench.testing",
        description="Helpers for plugin authors and tests.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    tiny = sub.add_parser(
        "tiny-model",
        help="build a tiny random causal LM (loadable with --policy hf:DIR)",
        description="Build a tiny randomly initialised causal LM of a real architecture, offline, "
                    "saved with save_pretrained (safetensors) plus tokenizer and chat template.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tiny.add_argument("dir", metavar="DIR", help="output folder (created; must be empty unless --force)")
    tiny.add_argument("--tokenizer", metavar="TOKENIZER_DIR",
                      help="copy this tokenizer (e.g. a real Qwen2.5 one) instead of training a small one")
    tiny.add_argument("--arch", choices=sorted(ARCHS), default="qwen2", help="architecture (default: qwen2)")
    tiny.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    tiny.add_argument("--layers", type=int, default=2, help="decoder layers (default: 2)")
    tiny.add_argument("--hidden", type=int, default=64, help="hidden size (default: 64)")
    tiny.add_argument("--heads", type=int, default=None, help="attention heads (default: hidden // 16)")
    tiny.add_argument("--vocab-size", type=int, default=512,
                      help="size of the trained tokenizer (default: 512; ignored with --tokenizer)")
    tiny.add_argument("--force", action="store_true", help="write into a non-empty DIR")

    from prmbench.testing.tiny_rm import FAMILIES

    rm = sub.add_parser(
        "tiny-rm",
        help="build a tiny random reward-model checkpoint of a family's real architecture (--rm FAMILY:DIR)",
        description="Build a tiny randomly initialised reward-model checkpoint with the family's real layout "
                    "and, where ../shared/models has them, real tokenizer files (see prmbench.testing.tiny_rm).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rm.add_argument("dir", metavar="DIR", help="output folder (created; must be empty unless --force)")
    rm.add_argument("--family", required=True, choices=FAMILIES, help="reward-model family")
    rm.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    rm.add_argument("--layers", type=int, default=2, help="decoder layers (default: 2)")
    rm.add_argument("--hidden", type=int, default=64, help="hidden size (default: 64)")
    rm.add_argument("--force", action="store_true", help="write into a non-empty DIR")

    pool = sub.add_parser(
        "math-pool",
        help="write a deterministic MATH-500 replay pool of real solutions (for tests and CI)",
        description="Write a replay pool (JSONL rows: problem_id, completions, correct) built from MATH-500 "
                    "reference solutions and ProcessBench model solutions; see prmbench.testing.pools. "
                    "A test fixture, not a model's outputs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pool.add_argument("out", metavar="OUT", help="output JSONL file")
    pool.add_argument("--data-dir", default=os.environ.get("PRMBENCH_DATA_DIR"),
                      help="shared data folder with math500/ and processbench/ (default: $PRMBENCH_DATA_DIR)")
    pool.add_argument("--problems", type=int, default=30, help="number of problems (default: 30)")
    pool.add_argument("--samples", type=int, default=8, help="completions per problem (default: 8)")
    pool.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    pool.add_argument("--all-problems", action="store_true",
                      help="also use problems without ProcessBench model solutions")

    ci = sub.add_parser(
        "ci-inputs",
        help="build the inputs of the CI regression fixture (pools, tiny PRM checkpoint)",
        description="Build every input the CI fixture configurations (results/ci/*.yaml) name: the MATH-500 "
                    "replay pool, a tiny qwen_prm checkpoint and a link to the CodeGen-16B HumanEval pool; "
                    "see prmbench.testing.ci.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ci.add_argument("dir", metavar="DIR", help="output folder (the fixture configurations expect runs/ci/inputs)")
    ci.add_argument("--data-dir", default=os.environ.get("PRMBENCH_DATA_DIR"),
                    help="shared data folder with math500/, processbench/ and pools/ (default: $PRMBENCH_DATA_DIR)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad arguments)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "tiny-model":
        from prmbench.testing.tiny_model import build_tiny_model

        out = Path(args.dir)
        if out.exists() and not out.is_dir():
            parser.error(f"DIR {out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not args.force:
            parser.error(f"DIR {out} is not empty; choose a new folder or pass --force")
        if args.tokenizer is not None and not Path(args.tokenizer).is_dir():
            parser.error(f"--tokenizer {args.tokenizer}: no such folder (pass a folder with tokenizer.json)")
        if args.layers < 1:
            parser.error(f"--layers must be >= 1 (got {args.layers})")
        if args.hidden < 8:
            parser.error(f"--hidden must be >= 8 (got {args.hidden})")
        t0 = time.perf_counter()
        try:
            path = build_tiny_model(out, tokenizer_dir=args.tokenizer, arch=args.arch, seed=args.seed,
                                    layers=args.layers, hidden=args.hidden, heads=args.heads,
                                    vocab_size=args.vocab_size)
        except (ValueError, FileNotFoundError) as e:
            parser.error(str(e))
        print(f"wrote tiny {args.arch} model to {path} in {time.perf_counter() - t0:.1f}s; "
              f"use it with --policy hf:{path}")
    elif args.command == "tiny-rm":
        from prmbench.testing.tiny_rm import build_tiny_rm

        out = Path(args.dir)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.force)):
            parser.error(f"DIR {out} exists and is not an empty folder; choose a new folder or pass --force")
        if args.layers < 1 or args.hidden < 8:
            parser.error(f"need --layers >= 1 and --hidden >= 8 (got {args.layers}, {args.hidden})")
        try:
            path = build_tiny_rm(out, args.family, seed=args.seed, layers=args.layers, hidden=args.hidden)
        except (ValueError, FileNotFoundError) as e:
            parser.error(str(e))
        print(f"wrote tiny {args.family} checkpoint to {path}; use it with --rm {args.family}:{path}")
    elif args.command == "math-pool":
        from prmbench.errors import PrmbenchError
        from prmbench.testing.pools import build_math500_pool

        if not args.data_dir:
            parser.error("math-pool needs --data-dir (or PRMBENCH_DATA_DIR) pointing at the shared data folder")
        if args.problems < 1 or args.samples < 1:
            parser.error("--problems and --samples must be >= 1")
        try:
            summary = build_math500_pool(args.data_dir, args.out, problems=args.problems, samples=args.samples,
                                         seed=args.seed, only_with_model_solutions=not args.all_problems)
        except PrmbenchError as e:
            parser.error(str(e))
        print(f"wrote {args.out}: {json.dumps(summary)}; use it with --policy replay:{args.out}")
    elif args.command == "ci-inputs":
        from prmbench.errors import PrmbenchError
        from prmbench.testing.ci import prepare_ci_inputs

        if not args.data_dir:
            parser.error("ci-inputs needs --data-dir (or PRMBENCH_DATA_DIR) pointing at the shared data folder")
        try:
            built = prepare_ci_inputs(args.dir, args.data_dir)
        except PrmbenchError as e:
            parser.error(str(e))
        print(f"wrote the CI fixture inputs to {args.dir}: {', '.join(sorted(built))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
