"""Plugin loading: built-ins and entry-point plugins through the same pluggy hooks.

The built-in plugins (prmbench.tasks, prmbench.strategies, prmbench.reward_models,
prmbench.policies) are registered as default plugins; third-party distributions add modules to
the entry-point group "prmbench". A plugin that fails to import or to register is reported and
skipped, unless PRMBENCH_STRICT_PLUGINS=1, which makes it fatal. So is a plugin that implements a
hook prmbench does not have (a misspelled name: pluggy's `check_pending`), or that registers a
name another plugin (a built-in included) already registered, unless it asks to replace it with
`register(name, factory, override=True)`; a replacement is recorded in run.json's plugin list.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import pluggy

from prmbench import hookspecs
from prmbench.env import env_flag
from prmbench.errors import PrmbenchError, did_you_mean
from prmbench.registry import KIND_LABEL, Entry, Registry, read_preset_dir

ENTRY_POINT_GROUP = "prmbench"
DEFAULT_PLUGINS = ("prmbench.tasks", "prmbench.strategies", "prmbench.reward_models", "prmbench.policies")
HOOK_KINDS = {
    "register_tasks": "task",
    "register_reward_models": "rm",
    "register_strategies": "strategy",
    "register_policies": "policy",
}


class PluginLoadError(PrmbenchError):
    """A plugin failed to load while PRMBENCH_STRICT_PLUGINS=1."""


class PluginHookError(PrmbenchError):
    """A plugin implements an unknown hook or takes a registered name without override=True."""


def strict_plugins() -> bool:
    """Whether PRMBENCH_STRICT_PLUGINS asks for plugin failures to be fatal."""
    return env_flag("PRMBENCH_STRICT_PLUGINS")


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def build_registry(include_paths: Iterable[str | Path] = (), strict: bool | None = None,
                   warn: Callable[[str], None] | None = None) -> Registry:
    """Load every plugin and preset into a new Registry.

    `include_paths` are folders of the user's own YAML presets (--include-path); they are
    loaded last and override presets of the same name.
    """
    strict = strict_plugins() if strict is None else strict
    warn = warn or (lambda msg: print(f"prmbench: warning: {msg}", file=sys.stderr))
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()

    def fail(name: str, origin: str, err: BaseException) -> None:
        msg = f"plugin {name!r} ({origin}) failed to load: {type(err).__name__}: {err}"
        registry.plugins.append({"name": name, "origin": origin, "status": f"failed: {type(err).__name__}: {err}"})
        if strict:
            raise PluginLoadError(msg + ". Fix or uninstall the plugin, or unset PRMBENCH_STRICT_PLUGINS to skip it.") from err
        warn(msg + " (skipped; set PRMBENCH_STRICT_PLUGINS=1 to make this fatal)")

    candidates: list[tuple[str, str, Callable[[], Any]]] = [
        (mod, "built-in", lambda mod=mod: importlib.import_module(mod)) for mod in DEFAULT_PLUGINS
    ]
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.value in DEFAULT_PLUGINS:
            continue
        candidates.append((ep.name, _dist_name(ep), ep.load))

    for name, origin, load in candidates:
        try:
            obj = load()
            pm.register(obj, name=name)
        except Exception as e:  # a broken plugin must not take the harness down
            fail(name, origin, e)
            continue
        status_index = len(registry.plugins)
        registry.plugins.append({"name": name, "origin": origin, "status": "loaded"})
        try:
            _check_hook_names(pm, obj)
            replaced = _call_hooks(pm, obj, name, origin, registry)
            if replaced:
                registry.plugins[status_index]["overrides"] = replaced
                warn(f"plugin {name!r} ({origin}) replaces {', '.join(replaced)} (override=True)")
        except PluginLoadError:
            raise
        except Exception as e:
            registry.plugins.pop(status_index)
            pm.unregister(obj)
            fail(name, origin, e)

    for path in include_paths:
        registry.add_preset_dir(Path(path), origin="include-path")
    return registry


def _check_hook_names(pm: pluggy.PluginManager, plugin: Any) -> None:
    """Refuse a plugin with a `@hookimpl` that matches no prmbench hook (pluggy's check_pending)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        known = [*HOOK_KINDS, "register_preset_dirs"]
        unknown = [c.name for c in pm.get_hookcallers(plugin) or [] if not c.has_spec()]
        hint = did_you_mean(unknown[0], known) if unknown else ""
        raise PluginHookError(f"it implements unknown hook(s) {', '.join(map(repr, unknown))}.{hint} "
                              f"The prmbench hooks are: {', '.join(known)}") from None


def _call_hooks(pm: pluggy.PluginManager, plugin: Any, name: str, origin: str, registry: Registry) -> list[str]:
    """Run the plugin's hooks and add what it registers; returns the names it replaced (override=True)."""
    label = name if origin == "built-in" else f"{name} ({origin})"
    staged: list[tuple[Entry, bool]] = []
    preset_dirs: list[Path] = []
    for hook_name, kind in HOOK_KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue

            def register(comp_name: str, factory: Any, summary: str = "", target: str | None = None,
                         override: bool = False, kind: str = kind) -> None:
                staged.append((Entry(kind=kind, name=comp_name, origin=label, summary=summary,
                                     factory=factory, target=target), bool(override)))

            impl.function(register=register)
    for impl in pm.hook.register_preset_dirs.get_hookimpls():
        if impl.plugin is plugin:
            impl.function(register=lambda p: preset_dirs.append(Path(p)))
    for d in preset_dirs:
        staged.extend((e, False) for e in read_preset_dir(d, origin=label))
    replaced = []
    for entry, override in staged:
        existing = registry.find(entry.kind, entry.name)
        if existing is None or existing.origin == label:
            continue
        if not override:
            raise PluginHookError(f"it registers {KIND_LABEL[entry.kind]} {entry.name!r}, which {existing.origin} "
                                  f"already provides; rename it, or pass override=True to register() to replace it")
        replaced.append(f"{KIND_LABEL[entry.kind]} {entry.name!r} of {existing.origin}")
    # Only a plugin whose hooks and presets all loaded adds anything: no half-registered plugins.
    for entry, _ in staged:
        registry.add(entry)
    return replaced
