"""Whether an existing run folder may be continued with `--resume`.

The configuration hash covers the flags; a run is also tied to what the flags point at: the
data each task loaded (its fingerprint), the task, policy, reward-model and strategy identities
(a replay file's sha256, a model folder's fingerprint or Hub commit, component versions and
configs) and the prmbench version. Continuing a run after any of them changed would mix records
of two different experiments in one folder, so `check_resume` refuses with one line that names
what differs and the fix (the CLI exits 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from prmbench.errors import ConfigError

FIX = "restore it, or run into a new --output folder"


def check_resume(output: Path, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Raise ConfigError when the run about to continue in `output` differs from the one there.

    `old` is the folder's run.json, `new` the run.json this invocation would write.
    """
    new = json.loads(json.dumps(new, default=str))  # compare as written: tuples as lists, objects as str
    first = next(_differences(old, new), None)
    if first is not None:
        what, before, now = first
        where, before, now = _first_difference(before, now)
        raise ConfigError(f"cannot --resume {output}: {what}{where} differs from the run there "
                          f"({_short(before)} there, {_short(now)} now); {FIX}")


def config_difference(old: Mapping[str, Any], spec: Any) -> str:
    """The suffix ` (FLAG: OLD there, NEW now)` naming the first setting in which run.json's
    config differs from `spec` (a RunSpec); the two config hashes when no config is recorded."""
    before = old.get("config")
    if not isinstance(before, dict):
        return f" (hash {old.get('config_hash')} there, {spec.hash()} now)"
    where, a, b = _first_difference(before, json.loads(json.dumps(spec.to_json(), default=str)))
    return f"{where.rstrip(')')}: {_short(a)} there, {_short(b)} now)" if where else ""


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    if old.get("prmbench_version") != new.get("prmbench_version"):
        yield "the prmbench version", old.get("prmbench_version"), new.get("prmbench_version")
    old_tasks, new_tasks = old.get("tasks") or {}, new.get("tasks") or {}
    for name, info in new_tasks.items():
        before = old_tasks.get(name) or {}
        if before.get("data_fingerprint") != info.get("data_fingerprint"):
            yield f"the data of task {name!r}", before.get("data_fingerprint"), info.get("data_fingerprint")
        if before.get("identity") != info.get("identity"):
            yield f"task {name!r}", before.get("identity"), info.get("identity")
    old_comp, new_comp = old.get("components") or {}, new.get("components") or {}
    if old_comp.get("policy") != new_comp.get("policy"):
        yield "the policy", old_comp.get("policy"), new_comp.get("policy")
    for kind, label in (("rms", "reward model"), ("strategies", "strategy")):
        before_all, now_all = old_comp.get(kind) or {}, new_comp.get(kind) or {}
        for name, ident in now_all.items():
            if before_all.get(name) != ident:
                yield f"{label} {name!r}", before_all.get(name), ident


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any]:
    """The first differing leaf of two JSON values: (" (key.path)" or "", a's value, b's value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    return (f" ({path})" if path else ""), a, b


def _short(value: Any) -> str:
    """A compact one-line rendering of a recorded value (long ones are cut)."""
    one_line = isinstance(value, str) and "\n" not in value
    text = value if one_line else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
