"""Sandbox for running untrusted generated Python programs (HumanEval+/MBPP+/LiveCodeBench).

Usage::

    from prmbench.sandbox import Limits, Sandbox

    with Sandbox() as sb:                      # isolation="auto": strongest level that works
        r = sb.run("print(int(input()) * 2)", stdin="21\\n", limits=Limits(wall_seconds=5))
        assert r.status == "ok" and r.stdout == "42\\n" and r.isolation == "bwrap"

Design: `Sandbox` keeps one worker slot per CPU core. A slot is a long-lived worker
process inside the isolation layer (bubblewrap namespaces, a dedicated non-root uid, a root
filesystem with the base interpreter and its standard library only: see `isolation`); per
run it forks a fresh child that sets the rlimits and executes the program, so a run costs
a fork and a few pipes (about 2.5 ms end to end on the development machine) instead of a
sandbox and interpreter start (about 29 ms). The program, its stdin and its output never pass through the worker: they
travel on pipes between the host and the child, and the host enforces the wall deadline
and the output cap. After each run every leftover process is killed and /tmp is emptied.

Modules: `types` (Limits, ExecResult), `layout` (what of the host an interpreter needs
inside, and which site-packages to hide), `isolation` (worker command lines per level),
`worker` (the in-sandbox fork server and the wire format), `slot` (host side of one
worker), `sandbox` (level choice and the slot pool).
"""

from prmbench.sandbox.sandbox import Sandbox, probe_level
from prmbench.sandbox.types import ISOLATION_LEVELS, STATUSES, ExecResult, Limits

__all__ = ["ISOLATION_LEVELS", "STATUSES", "ExecResult", "Limits", "Sandbox", "probe_level"]
