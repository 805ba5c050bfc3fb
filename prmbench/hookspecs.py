"""The plugin hooks: one per kind of component, each handed a `register` callback.

A plugin is any module or object with functions marked `@hookimpl` (import it from
`prmbench`), made known through the entry-point group "prmbench":

    [project.entry-points.prmbench]
    my_plugin = "my_package.prmbench_plugin"

Example:

    from prmbench import hookimpl

    @hookimpl
    def register_tasks(register):
        register("my_task", "my_package.tasks:MyTask", summary="what it measures")

`register(name, factory, summary="", target=None, override=False)`: `factory` is a callable
returning the component, or a "module:attribute" string imported only when the component is
used (keeps `prmbench ls` fast). `target` names the factory argument that receives the part after
a colon in a spec such as `hf:/models/tiny` (`target="model"`). A name another plugin (a built-in
included) already registered is refused, and the plugin skipped, unless `override=True` asks to
replace it. A `@hookimpl` whose name is not one of the hooks below is reported the same way.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("prmbench")
hookimpl = pluggy.HookimplMarker("prmbench")


@hookspec
def register_tasks(register):  # type: ignore[no-untyped-def]
    """Register Task factories."""


@hookspec
def register_reward_models(register):  # type: ignore[no-untyped-def]
    """Register RewardModel factories."""


@hookspec
def register_strategies(register):  # type: ignore[no-untyped-def]
    """Register Strategy factories."""


@hookspec
def register_policies(register):  # type: ignore[no-untyped-def]
    """Register Policy factories (generation backends)."""


@hookspec
def register_preset_dirs(register):  # type: ignore[no-untyped-def]
    """Register folders of YAML presets: `register(path)`."""
