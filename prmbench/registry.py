"""The plugin registry: names -> component factories and presets, with did-you-mean lookup.

Kinds are "task", "rm", "strategy" and "policy". A name is either a factory registered by a
plugin (a *family*, e.g. `best_of_n`), a preset (a family plus arguments, from YAML), or
`family:target` for families that take a target (e.g. `hf:/models/tiny`, `replay:pool.jsonl`).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from prmbench.errors import ConfigError, unknown_name

KINDS = ("task", "rm", "strategy", "policy")
LIST_COMMAND = {"task": "prmbench ls tasks", "rm": "prmbench ls rms",
                "strategy": "prmbench ls strategies", "policy": "prmbench ls policies"}
KIND_LABEL = {"task": "task", "rm": "reward model", "strategy": "strategy", "policy": "policy"}


@dataclass(frozen=True)
class Entry:
    """A registered family or preset."""

    kind: str
    name: str
    origin: str
    summary: str = ""
    factory: Callable[..., Any] | str | None = None  # families only
    target: str | None = None  # families only: argument receiving `family:TARGET`
    family: str | None = None  # presets only
    args: Mapping[str, Any] = field(default_factory=dict)  # presets only

    @property
    def is_preset(self) -> bool:
        """Whether this entry is a YAML preset rather than a plugin factory."""
        return self.family is not None


@dataclass(frozen=True)
class Resolved:
    """A spec resolved to its family entry and final arguments."""

    kind: str
    spec: str
    family: Entry
    args: Mapping[str, Any]


def _import_factory(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot import component factory {path!r}: {e}. Is the plugin installed?") from e
    return obj  # type: ignore[no-any-return]


def parse_args_string(text: str | None) -> dict[str, Any]:
    """Parse `key=value,key=value` (values read as YAML scalars: 4, 0.5, true, min)."""
    out: dict[str, Any] = {}
    if not text:
        return out
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"bad argument {item!r}: write key=value pairs separated by commas, e.g. aggregation=min,n=4")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
    return out


class Registry:
    """All registered families and presets, by kind and name."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.plugins: list[dict[str, str]] = []  # name, origin, status (loaded / failed: ...)

    # -- registration -----------------------------------------------------------------------
    def add(self, entry: Entry) -> None:
        """Add an entry; a later registration of the same name replaces an earlier one."""
        if entry.kind not in KINDS:
            raise ConfigError(f"unknown component kind {entry.kind!r} from {entry.origin}; use one of {', '.join(KINDS)}")
        self._entries[entry.kind][entry.name] = entry

    def add_preset_file(self, path: Path, origin: str) -> None:
        """Load presets from a YAML file (see `read_preset_file`)."""
        for entry in read_preset_file(path, origin):
            self.add(entry)

    def add_preset_dir(self, path: Path, origin: str) -> None:
        """Load every *.yaml / *.yml file of a folder as presets."""
        for entry in read_preset_dir(path, origin):
            self.add(entry)

    # -- lookup -----------------------------------------------------------------------------
    def entries(self, kind: str) -> list[Entry]:
        """All entries of a kind, sorted by name."""
        return sorted(self._entries[kind].values(), key=lambda e: e.name)

    def names(self, kind: str) -> list[str]:
        """All names of a kind."""
        return sorted(self._entries[kind])

    def find(self, kind: str, name: str) -> Entry | None:
        """The entry called `name`, or None."""
        return self._entries[kind].get(name)

    def get(self, kind: str, name: str) -> Entry:
        """The entry called `name`, or a did-you-mean ConfigError."""
        try:
            return self._entries[kind][name]
        except KeyError:
            raise unknown_name(KIND_LABEL[kind], name, self._entries[kind], LIST_COMMAND[kind]) from None

    def resolve(self, kind: str, spec: str, overrides: Mapping[str, Any] | None = None) -> Resolved:
        """Follow presets down to a family and merge arguments (preset < spec target < overrides)."""
        spec = spec.strip()
        if not spec:
            raise ConfigError(f"empty {KIND_LABEL[kind]} name; run `{LIST_COMMAND[kind]}` for the choices")
        args: dict[str, Any] = {}
        target: str | None = None
        name = spec
        if spec not in self._entries[kind] and ":" in spec:
            name, target = spec.split(":", 1)
        entry = self.get(kind, name)
        chain = [entry.name]
        while entry.is_preset:
            args = {**entry.args, **args}
            entry = self.get(kind, entry.family)  # type: ignore[arg-type]
            if entry.name in chain:
                raise ConfigError(f"preset cycle: {' -> '.join(chain + [entry.name])}")
            chain.append(entry.name)
        if target is not None:
            if entry.target is None:
                raise ConfigError(f"{KIND_LABEL[kind]} {name!r} takes no ':' target (got {spec!r}); "
                                  f"pass arguments with --{_flag(kind)}-args key=value instead")
            if not target:
                raise ConfigError(f"{spec!r} needs a target after the colon, e.g. {name}:PATH")
            args[entry.target] = target
        args.update(overrides or {})
        return Resolved(kind=kind, spec=spec, family=entry, args=args)

    def accepted_args(self, kind: str, spec: str) -> list[str] | None:
        """The argument names the component `spec` resolves to takes (None: any, `**kwargs`)."""
        factory = self.resolve(kind, spec).family.factory
        if isinstance(factory, str):
            factory = _import_factory(factory)
        assert factory is not None
        return _accepted(factory)

    def distribute_args(self, kind: str, specs: Sequence[str], args: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Each component's share of one `--KIND-args` mapping.

        `NAME:key=value` goes to component NAME only (the part before the last colon; it must be
        one of `specs`). A plain `key=value` goes to every component that takes `key`; one that
        none of them takes goes to all, so building names the component and what it accepts.
        """
        flag = f"--{_flag(kind)}-args"
        targeted: dict[str, dict[str, Any]] = {s: {} for s in specs}
        plain: dict[str, Any] = {}
        for key, value in args.items():
            name, sep, arg = str(key).rpartition(":")
            if not sep:
                plain[key] = value
            elif name in targeted and arg:
                targeted[name][arg] = value
            else:
                raise ConfigError(f"{flag} {key}={value}: {name!r} is not a {KIND_LABEL[kind]} of this run "
                                  f"({', '.join(specs)}); write {flag} NAME:key=value with one of them, or key=value "
                                  f"for every one that takes key")
        accepted = {s: self.accepted_args(kind, s) for s in specs} if plain else {}
        unclaimed = {k for k in plain if not any(a is None or k in a for a in accepted.values())}
        return {s: {**{k: v for k, v in plain.items() if k in unclaimed or accepted[s] is None or k in accepted[s]},
                    **targeted[s]} for s in specs}

    def takes(self, kind: str, spec: str, arg: str) -> bool:
        """Whether the component `spec` accepts the argument `arg` (by name, or through **kwargs)."""
        factory = self.resolve(kind, spec).family.factory
        if isinstance(factory, str):
            factory = _import_factory(factory)
        accepted = _accepted(factory)  # type: ignore[arg-type]
        return accepted is None or arg in accepted

    def build(self, kind: str, spec: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """Resolve `spec` and construct the component, naming it after the spec."""
        r = self.resolve(kind, spec, overrides)
        factory = r.family.factory
        if isinstance(factory, str):
            factory = _import_factory(factory)
        assert factory is not None
        if r.family.target and r.family.target not in r.args and not _has_default(factory, r.family.target):
            raise ConfigError(f"{KIND_LABEL[kind]} {spec!r} needs a target: write {r.family.name}:VALUE "
                              f"(for example {r.family.name}:/path)")
        _check_args(factory, r.args, kind, spec)
        component = factory(**r.args)
        component.name = spec
        return component


def read_preset_file(path: Path, origin: str) -> list[Entry]:
    """Preset entries of a YAML file: one mapping, or `presets:` with a list of mappings.

    Each preset has `name`, `kind` (task | rm | strategy | policy), `family` (a registered name
    or another preset), and optionally `summary` and `args`.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read preset file {path}: {e}") from e
    items = data.get("presets", [data]) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"preset file {path} must hold a mapping or a `presets:` list")
    entries = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"name", "kind", "family"} <= item.keys():
            raise ConfigError(f"preset #{i + 1} in {path} needs the keys name, kind and family")
        args = item.get("args") or {}
        if not isinstance(args, dict):
            raise ConfigError(f"preset {item['name']!r} in {path}: `args` must be a mapping")
        if item["kind"] not in KINDS:
            raise ConfigError(f"preset {item['name']!r} in {path}: kind must be one of {', '.join(KINDS)}")
        entries.append(Entry(kind=item["kind"], name=str(item["name"]), origin=f"{origin}:{path.name}",
                             summary=str(item.get("summary", "")), family=str(item["family"]), args=args))
    return entries


def read_preset_dir(path: Path, origin: str) -> list[Entry]:
    """Preset entries of every *.yaml / *.yml file of a folder."""
    if not path.is_dir():
        raise ConfigError(f"preset folder {path} does not exist (check --include-path)")
    return [e for f in sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) for e in read_preset_file(f, origin)]


def _flag(kind: str) -> str:
    return {"task": "task", "rm": "rm", "strategy": "strategy", "policy": "policy"}[kind]


def _has_default(factory: Callable[..., Any], name: str) -> bool:
    """Whether the factory's argument `name` has a default (then `family` alone, without `:TARGET`, works)."""
    try:
        param = inspect.signature(factory).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is not inspect.Parameter.empty


def _accepted(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments `factory` takes, in order; None when it takes any (`**kwargs`, or
    no signature to read)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]


def _check_args(factory: Callable[..., Any], args: Mapping[str, Any], kind: str, spec: str) -> None:
    accepted = _accepted(factory)
    if accepted is None:
        return
    bad = [k for k in args if k not in accepted]
    if bad:
        raise ConfigError(
            f"{KIND_LABEL[kind]} {spec!r} does not take argument(s) {', '.join(map(repr, bad))}; "
            f"it accepts: {', '.join(accepted) or 'no arguments'}"
        )
