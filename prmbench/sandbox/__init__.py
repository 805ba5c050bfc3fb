"""Sandbox for running untrusted generated Python programs (HumanEval+/MBPP+/LiveCodeBench).

Usage::

    from prmbench.sandbox import Limits, Sandbox

    with Sandbox() as sb:                      # isolation="auto": strongest level that works
        r = sb.run("print(int(input()) * 2)", stdin="21\\n", limits=Limits(wall_seconds=5))
        assert r.status == "ok" and r.stdout == "42\\n" and r.isolation == "bwrap"

Modules: `types` (Limits, ExecResult), `isolation` (worker command lines per level),
`worker` (the in-sandbox fork server), `slot` (host side of one worker), `sandbox`
(level choice and the slot pool).
"""

from prmbench.sandbox.sandbox import Sandbox, probe_level
from prmbench.sandbox.types import ISOLATION_LEVELS, STATUSES, ExecResult, Limits

__all__ = ["ISOLATION_LEVELS", "STATUSES", "ExecResult", "Limits", "Sandbox", "probe_level"]
