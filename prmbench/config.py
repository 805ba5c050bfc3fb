"""The run configuration: `RunConfig` and the parsing of its flag-shaped options.

`RunConfig` holds every setting that affects a run's records, with the defaults the CLI, the
`--config` YAML and the Python API share (`prmbench.runner.run(RunConfig(...), ...)`).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from prmbench.budgets import check_unit
from prmbench.context import GenParams
from prmbench.errors import ConfigError, PrmbenchError
from prmbench.interfaces import config_hash
from prmbench.registry import parse_args_string

REQUIRED_OPTIONS = ("tasks", "rm")
"""Options without a default (flag names). --strategy, --budget and --policy are required only by
search tasks (step-level tasks need none): the runner asks for them (`check_search_flags`)."""


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved run configuration; its hash identifies the run for --resume.

    The single source of defaults: the Python API builds it directly (field names), the CLI and
    `--config` YAML through `from_options` (flag names), and help texts quote `default(name)`.
    How a run executes without changing its records (`--concurrency`, `--output`) is not part of
    it.
    """

    tasks: tuple[str, ...]
    rms: tuple[str, ...]
    strategies: tuple[str, ...] = ()  # none needed when every task is step-level
    budgets: tuple[int, ...] = ()
    policy: str = ""
    limit: int | None = None
    seed: int = 0
    temperature: float = GenParams.temperature  # the sampling defaults live in GenParams only
    top_p: float = GenParams.top_p
    max_tokens: int = GenParams.max_tokens
    task_args: Mapping[str, Any] = field(default_factory=dict)
    rm_args: Mapping[str, Any] = field(default_factory=dict)
    strategy_args: Mapping[str, Any] = field(default_factory=dict)
    policy_args: Mapping[str, Any] = field(default_factory=dict)
    data_files: Mapping[str, str] = field(default_factory=dict)
    include_paths: tuple[str, ...] = ()
    budget_unit: str = "n"

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field `name` (for help texts and docs)."""
        f = cls.__dataclass_fields__[name]
        return f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "RunConfig":
        """A validated config from flag-named options (`prmbench run` flags / `--config` keys):
        comma lists or YAML lists for tasks, rm, strategy and budget, `K=V,..` strings or
        mappings for the --X-args, TASK=PATH items or a mapping for data_file. Options that are
        absent or None take the field defaults."""
        opts = {k: v for k, v in options.items() if v is not None}
        missing = [f"--{n.replace('_', '-')}" for n in REQUIRED_OPTIONS if n not in opts]
        if missing:
            raise ConfigError(f"missing {', '.join(missing)}: give them as flags or in --config FILE.yaml "
                              f"(see `prmbench run --help` for examples)")
        d = cls.default
        spec = cls(
            tasks=split_list(opts["tasks"], "--tasks"),
            rms=split_list(opts["rm"], "--rm"),
            strategies=split_list(opts.get("strategy"), "--strategy"),
            budgets=parse_budgets(opts["budget"]) if "budget" in opts else (),
            policy=str(opts.get("policy") or ""),
            limit=_number(opts.get("limit", d("limit")), int, "--limit"),
            seed=_number(opts.get("seed", d("seed")), int, "--seed"),
            temperature=_number(opts.get("temperature", d("temperature")), float, "--temperature"),
            top_p=_number(opts.get("top_p", d("top_p")), float, "--top-p"),
            max_tokens=_number(opts.get("max_tokens", d("max_tokens")), int, "--max-tokens"),
            task_args=args_mapping(opts.get("task_args"), "--task-args"),
            rm_args=args_mapping(opts.get("rm_args"), "--rm-args"),
            strategy_args=args_mapping(opts.get("strategy_args"), "--strategy-args"),
            policy_args=args_mapping(opts.get("policy_args"), "--policy-args"),
            data_files=data_files(opts.get("data_file")),
            include_paths=tuple(str(p) for p in opts.get("include_path") or ()),
            budget_unit=str(opts.get("budget_unit", d("budget_unit"))),
        )
        spec.validate()
        return spec

    def gen_params(self) -> GenParams:
        """The sampling settings every generation request of the run gets."""
        return GenParams(self.temperature, self.top_p, self.max_tokens)

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (as stored in run.json)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def hash(self) -> str:
        """Hash of everything that affects results."""
        return config_hash(self.to_json())

    def validate(self) -> None:
        """Reject empty lists, bad budgets and sampling settings with a clear message.

        --strategy, --budget and --policy may be absent (step-level tasks need none); the runner
        asks for them once it knows a search task is in the run (`check_search_flags`).
        """
        for label, items in (("--tasks", self.tasks), ("--rm", self.rms)):
            if not items:
                raise ConfigError(f"{label} is empty: name at least one (see `prmbench ls`)")
        if any(b < 1 for b in self.budgets):
            raise ConfigError(f"--budget must be positive integers, e.g. --budget 1,4,16 (got {list(self.budgets)})")
        check_unit(self.budget_unit)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be a positive integer (got {self.limit})")
        if self.temperature < 0 or not (0 < self.top_p <= 1) or self.max_tokens < 1:
            raise ConfigError("sampling settings out of range: need --temperature >= 0, 0 < --top-p <= 1, --max-tokens >= 1")
        unknown = sorted(set(self.data_files) - set(self.tasks))
        if unknown:
            raise ConfigError(f"--data-file names task(s) {', '.join(unknown)} that are not in --tasks {','.join(self.tasks)}")


def split_list(text: str | Iterable[str] | None, flag: str) -> tuple[str, ...]:
    """Split a comma list (or accept a YAML list) into names, rejecting empty entries."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else [str(x) for x in text]
    out = tuple(i.strip() for i in items)
    if any(not i for i in out):
        raise ConfigError(f"{flag} has an empty entry in {text!r}; write names separated by single commas")
    return out


def parse_budgets(text: str | int | float | Iterable[Any]) -> tuple[int, ...]:
    """Parse `1,4,16` (or whole numbers in scientific notation, `2e9`) into positive integers.

    Anything else is a clear error.
    """
    if isinstance(text, (int, float)):  # a single YAML number: `budget: 4`
        text = [text]
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        s = str(item).strip()
        try:
            value = int(s) if s.isdigit() else int(float(s)) if float(s).is_integer() else 0
        except (ValueError, OverflowError):
            value = 0
        if value < 1:
            raise PrmbenchError(f"malformed --budget entry {s!r}: budgets are positive whole numbers, e.g. "
                                f"--budget 1,4,16 (FLOPs caps may be written 2e9)")
        out.append(value)
    return tuple(out)


RunSpec = RunConfig
"""The former name of `RunConfig` (kept for plugins, scripts and other branches)."""

EXECUTORS = ("local", "ray")
EXECUTOR_OPTIONS = ("executor", "ray_address", "ray_workers", "ray_gpus_per_worker", "ray_unit_size", "ray_max_attempts")
"""Flag-named options of `ExecutorConfig` (`--executor`, `--ray-*`; also `--config` YAML keys)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a run's work executes: in this process (`local`) or on a Ray cluster (`ray`).

    The single source of the executor defaults (CLI, `--config` YAML, Python API). Like
    `--concurrency`, it is not part of `RunConfig` or its hash: records are the same on every
    executor, so a run started on one may be resumed on the other.
    """

    executor: str = "local"
    ray_address: str | None = None  # None: start a local Ray instance; "auto": the cluster this node joined
    ray_workers: int | None = None  # None: cluster GPUs // ray_gpus_per_worker, or 1 on a cluster without GPUs
    ray_gpus_per_worker: float | None = None  # None: 1 on a cluster with GPUs, else 0
    ray_unit_size: int | None = None  # problems per work unit; None: max(8, the run's concurrency)
    ray_max_attempts: int = 3  # a unit that fails (or whose worker dies) this often fails the run

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field `name` (for help texts)."""
        return cls.__dataclass_fields__[name].default

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "ExecutorConfig":
        """A validated executor config from flag-named options (absent or None: the defaults)."""
        opts = {k: v for k, v in options.items() if k in EXECUTOR_OPTIONS and v is not None}
        cfg = cls(**opts)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Reject unknown executors and non-positive sizes, naming the flag and the fix."""
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)} (got {self.executor!r})")
        for flag, value in (("--ray-workers", self.ray_workers), ("--ray-unit-size", self.ray_unit_size),
                            ("--ray-max-attempts", self.ray_max_attempts)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{flag} must be a positive integer (got {value!r})")
        g = self.ray_gpus_per_worker
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float)) or g < 0):
            raise ConfigError(f"--ray-gpus-per-worker must be a number >= 0, e.g. 1 or 0.5 (got {g!r})")
        ray_only = [f"--{n.replace('_', '-')}" for n in EXECUTOR_OPTIONS[1:-1] if getattr(self, n) is not None]
        if self.executor != "ray" and ray_only:
            raise ConfigError(f"{', '.join(ray_only)} only apply to --executor ray; add --executor ray or drop them")

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (run.json's `executor` section adds what the cluster provided)."""
        return asdict(self)


def _number(value: Any, kind: type, flag: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a number (got {value!r})") from None


def args_mapping(value: Any, flag: str) -> dict[str, Any]:
    """`K=V,..` (a flag) or a mapping (YAML) as a dict."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        return parse_args_string(value)
    raise ConfigError(f"{flag} must be key=value pairs or a mapping")


def data_files(values: Any) -> dict[str, str]:
    """--data-file TASK=PATH items (or a mapping) as {task: path}; each path must exist."""
    if not values:
        return {}
    if isinstance(values, dict):
        return {str(k): str(v) for k, v in values.items()}
    if isinstance(values, str):
        values = [values]
    out = {}
    for item in values:
        if "=" not in item:
            raise ConfigError(f"--data-file expects TASK=PATH (e.g. --data-file math500=data/test.jsonl), got {item!r}")
        task, path = item.split("=", 1)
        if not Path(path).is_file():
            raise ConfigError(f"--data-file {item}: {path} does not exist")
        out[task.strip()] = path
    return out
