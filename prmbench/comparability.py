"""Whether two runs may be compared: the settings that must agree, and a list of what differs.

Two levels, one per kind of comparison:

- `setting_differences` (every `compare`): the sampling settings (temperature, top_p,
  max_tokens), the seed and, for every task both runs hold, its version, data fingerprint and
  configuration (the task's identity: its arguments and the versions of its graders, e.g.
  math-verify, the code judge, the evalplus semantics). Runs that differ there answer different
  questions, so their accuracies are not paired.
- `identity_differences` (`compare --exact`, the deterministic CI fixture): in addition the whole
  resolved run configuration and the identity of every component (name, version, configuration,
  parameter count: a replay file's hash, a checkpoint's fingerprint, a strategy's settings) and
  every task entry (also its problem count). Only then must two runs agree record by record.

Neither looks at timings, hardware, git revision or prmbench's own version: comparing those is
what a regression check is for. A value a run does not record reads as "not recorded", which
differs from any recorded value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from prmbench.errors import ConfigError, DataError
from prmbench.results import RunResult

#: Run settings every comparison requires to be equal (keys of run.json "config").
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")
#: The parts of a component's or task's identity that decide its results (not its Python class path).
IDENTITY_KEYS = ("name", "version", "config")
#: How many differences a refusal names before it says "and K more".
SHOWN = 6


class _Missing:
    """The value of a setting a run does not record."""

    def __repr__(self) -> str:
        return "not recorded"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Difference:
    """One setting that differs: where it lives (a dotted path) and its value in each run."""

    what: str
    base: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.what}: {_show(self.base)} (base) vs {_show(self.new)} (new)"


def _show(value: Any) -> str:
    if value is MISSING:
        return "not recorded"
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def diff_values(what: str, base: Any, new: Any) -> list[Difference]:
    """The differences between two JSON values, descending into mappings (dotted paths)."""
    if isinstance(base, Mapping) and isinstance(new, Mapping):
        out: list[Difference] = []
        for key in sorted(set(base) | set(new), key=str):
            out += diff_values(f"{what}.{key}", base.get(key, MISSING), new.get(key, MISSING))
        return out
    return [] if _same(base, new) else [Difference(what, base, new)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)  # 1 and 1.0 are the same setting
    return bool(a == b)


def _setting(run: RunResult, key: str) -> Any:
    config = run.info.config
    if key in config:
        return config[key]
    return run.info.seed if key == "seed" and "seed" in run.run else MISSING


def _identity(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        return MISSING if entry is None else entry
    return {k: entry.get(k, MISSING) for k in IDENTITY_KEYS}


def _tasks(run: RunResult) -> Mapping[str, Any]:
    return run.info.tasks


def check_task_records(run: RunResult, tasks: Sequence[str]) -> None:
    """DataError when `run` records no version or data fingerprint for one of `tasks`."""
    for task in tasks:
        info = _tasks(run).get(task)
        if not info or info.get("version") is None or info.get("data_fingerprint") is None:
            raise DataError(f"{run.path / 'run.json'} records no version and data fingerprint for task {task!r}, "
                            "so it cannot be checked to use the same data; re-run it with this prmbench")


def setting_differences(base: RunResult, new: RunResult, tasks: Sequence[str]) -> list[Difference]:
    """Sampling settings, seed and, per task in `tasks`, version, data and configuration that differ."""
    out: list[Difference] = []
    for key in SAMPLING_KEYS:
        out += diff_values(key, _setting(base, key), _setting(new, key))
    for task in sorted(tasks):
        a, b = _tasks(base).get(task) or {}, _tasks(new).get(task) or {}
        out += diff_values(f"task {task} version", str(a.get("version")), str(b.get("version")))
        out += diff_values(f"task {task} data fingerprint (different data)", a.get("data_fingerprint", MISSING),
                           b.get("data_fingerprint", MISSING))
        ia, ib = a.get("identity"), b.get("identity")
        if ia is not None or ib is not None:  # runs written before task identities were recorded have neither
            out += diff_values(f"task {task} configuration", _identity(ia), _identity(ib))
    return out


def _component_identities(run: RunResult) -> dict[str, Any]:
    comps = run.info.components
    out: dict[str, Any] = {"policy": MISSING}
    policy = comps.get("policy")
    if isinstance(policy, Mapping):
        out["policy"] = {**_identity(policy), "num_parameters": policy.get("num_parameters", MISSING)}
    for kind in ("rms", "strategies"):
        out[kind] = {name: {**_identity(c), **({"num_parameters": c["num_parameters"]}
                                               if isinstance(c, Mapping) and "num_parameters" in c else {})}
                     for name, c in (comps.get(kind) or {}).items()}
    return out


def _task_entries(run: RunResult) -> dict[str, Any]:
    return {name: {"version": info.get("version", MISSING), "data_fingerprint": info.get("data_fingerprint", MISSING),
                   "n_problems": info.get("n_problems", MISSING), "identity": _identity(info.get("identity"))}
            for name, info in _tasks(run).items()}


def identity_differences(base: RunResult, new: RunResult) -> list[Difference]:
    """Everything that must agree for two runs to be expected identical record by record."""
    out = diff_values("config", base.run.get("config") or {}, new.run.get("config") or {})
    out += diff_values("components", _component_identities(base), _component_identities(new))
    out += diff_values("tasks", _task_entries(base), _task_entries(new))
    return out


def check_settings(base: RunResult, new: RunResult) -> None:
    """The gate of every comparison: ConfigError naming the differences when the sampling settings,
    seed or a shared task's version, data or configuration differ; DataError when a shared task's
    version or data fingerprint is not recorded."""
    tasks = sorted(set(_tasks(base)) & set(_tasks(new)) | {c.task for c in base.cells} & {c.task for c in new.cells})
    check_task_records(base, tasks)
    check_task_records(new, tasks)
    diffs = setting_differences(base, new, tasks)
    if diffs:
        raise refuse(base, new, diffs, "Compare runs made with the same sampling settings, seed, task configuration "
                                       "and grader versions (re-run the base with the new settings).")


def check_identity(base: RunResult, new: RunResult) -> None:
    """The gate of the exact comparison: ConfigError naming the differences when anything of
    `identity_differences` differs."""
    diffs = identity_differences(base, new)
    if diffs:
        raise refuse(base, new, diffs, "Exact comparison needs runs of one configuration: re-run with the base's "
                                       "settings, or regenerate the baseline if the change is intended "
                                       "(for the CI fixture: bash scripts/regression_check.sh --update).")


def refuse(base: RunResult, new: RunResult, differences: Sequence[Difference], fix: str) -> ConfigError:
    """One-line ConfigError naming the differences (the first few) and how to fix it."""
    shown = "; ".join(str(d) for d in differences[:SHOWN])
    more = f"; and {len(differences) - SHOWN} more" if len(differences) > SHOWN else ""
    return ConfigError(f"{base.path} and {new.path} are not comparable, their settings differ: {shown}{more}. {fix}")
