"""The `prmbench lab` subcommand (wired into prmbench.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from prmbench.errors import ConfigError

EPILOG = """examples:
  # the whole lab (about 20 minutes on 2 free CPU cores): train, label, train PRMs, search, report
  prmbench lab --output lab
  # a few minutes: tiny models, 6 problems, budgets 1..4 (a check that every stage runs)
  prmbench lab --quick --output lab-quick
  # rerun: finished stages are skipped, trained models are reused from the cache
  prmbench lab --output lab --cache-dir ~/.cache/prmbench-lab

Output: DIR/lab_summary.json (cells per domain: prm, random, majority, oracle, single), DIR/tables.md,
DIR/leaderboard.md, DIR/lab_times.json (seconds per stage), DIR/runs/<domain>/ (ordinary run folders:
prmbench leaderboard / compare read them), DIR/labels/<domain>.jsonl, DIR/models/ (cached models).
"""


def cmd_lab(args: argparse.Namespace) -> int:
    """Run the lab's missing stages and print its summary."""
    from prmbench.lab.config import lab_config
    from prmbench.lab.pipeline import Lab

    if args.threads < 1:
        raise ConfigError(f"--threads must be a positive integer (got {args.threads})")
    out = Path(args.output)
    lab = Lab(lab_config(seed=args.seed, quick=args.quick), out, cache_dir=args.cache_dir, threads=args.threads)
    try:
        summary = lab.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished stages are kept in {out}; run the same command again to continue",
              file=sys.stderr)
        return 130
    print((out / "tables.md").read_text())
    for d, s in summary["domains"].items():
        print(f"{d}: {json.dumps(s['accuracy'])} prm-random {s['prm_vs_random']}")
    print(f"\nlab: {out / 'lab_summary.json'}")
    return 0


def add_parsers(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """Add `lab` to the subcommand parsers."""
    p = sub.add_parser("lab", help="the paper in miniature: train policies and PRMs from scratch, label, search, report",
                       epilog=EPILOG, formatter_class=fmt)
    p.add_argument("--output", default="lab", metavar="DIR", help="lab folder (default ./lab); reruns resume it")
    p.add_argument("--quick", action="store_true", help="tiny sizes: every stage in a few minutes (tests, CI)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0): same seed -> same lab")
    p.add_argument("--cache-dir", dest="cache_dir", metavar="DIR", help="trained-model cache (default DIR/models)")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU cores to use (default 2): trainings run that many at a time, one torch thread each; "
                        "labelling and search use that many torch threads")
    p.set_defaults(func=cmd_lab)
