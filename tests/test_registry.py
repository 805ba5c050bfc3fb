"""Registry: lookup, did-you-mean, presets, targets and argument checking."""

from pathlib import Path

import pytest

from prmbench.errors import ConfigError
from prmbench.plugins import build_registry
from prmbench.registry import Entry, Registry, parse_args_string


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(strict=True)


def test_builtins_registered_through_hooks(registry):
    assert {"math500"} <= set(registry.names("task"))
    assert {"oracle", "random"} <= set(registry.names("rm"))
    assert {"best_of_n", "majority_vote", "best_of_n_min"} <= set(registry.names("strategy"))
    assert {"hf", "replay"} <= set(registry.names("policy"))
    assert [p["status"] for p in registry.plugins if p["origin"] == "built-in"] == ["loaded"] * 4


def test_did_you_mean(registry):
    with pytest.raises(ConfigError) as e:
        registry.get("strategy", "best_of_m")
    msg = str(e.value)
    assert "best_of_n" in msg and "prmbench ls strategies" in msg
    with pytest.raises(ConfigError, match="prmbench ls rms"):
        registry.get("rm", "zzzz")


def test_preset_resolves_to_family_with_args(registry):
    r = registry.resolve("strategy", "best_of_n_min", {})
    assert r.family.name == "best_of_n" and r.args == {"aggregation": "min"}
    s = registry.build("strategy", "best_of_n_min")
    assert s.name == "best_of_n_min" and s.aggregation == "min"
    # overrides win over preset arguments
    assert registry.build("strategy", "best_of_n_min", {"aggregation": "prod"}).aggregation == "prod"


def test_target_spec_and_errors(registry):
    r = registry.resolve("policy", "hf:/some/dir")
    assert r.family.name == "hf" and r.args == {"model": "/some/dir"}
    r = registry.resolve("policy", "hf:Qwen/Qwen2.5-Math-1.5B-Instruct")
    assert r.args["model"] == "Qwen/Qwen2.5-Math-1.5B-Instruct"
    with pytest.raises(ConfigError, match="takes no ':' target"):
        registry.resolve("strategy", "best_of_n:4")
    with pytest.raises(ConfigError, match="needs a target"):
        registry.build("policy", "hf")


def test_unknown_argument_lists_accepted(registry):
    with pytest.raises(ConfigError, match="accepts: aggregation"):
        registry.build("strategy", "best_of_n", {"agregation": "min"})
    with pytest.raises(ConfigError, match="unknown aggregation 'mn'.*'min'"):
        registry.build("strategy", "best_of_n", {"aggregation": "mn"})


def test_parse_args_string():
    assert parse_args_string("aggregation=min, n=4,t=0.5,flag=true") == {
        "aggregation": "min", "n": 4, "t": 0.5, "flag": True}
    with pytest.raises(ConfigError, match="key=value"):
        parse_args_string("oops")


def test_include_path_presets_override(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text(
        "presets:\n  - {name: my_bon, kind: strategy, family: best_of_n_min, summary: mine}\n"
        "  - {name: best_of_n_min, kind: strategy, family: best_of_n, args: {aggregation: mean}}\n")
    reg = build_registry(include_paths=[tmp_path], strict=True)
    # a user's preset may build on another preset, and overrides a built-in preset of the same name
    assert reg.build("strategy", "my_bon").aggregation == "mean"
    assert reg.get("strategy", "my_bon").origin.startswith("include-path")


def test_bad_preset_files(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("name: x\nkind: strategy\n")
    with pytest.raises(ConfigError, match="needs the keys name, kind and family"):
        build_registry(include_paths=[tmp_path], strict=True)
    with pytest.raises(ConfigError, match="does not exist"):
        build_registry(include_paths=[tmp_path / "missing"], strict=True)


def test_preset_cycle_detected():
    reg = Registry()
    reg.add(Entry(kind="task", name="a", origin="t", family="b"))
    reg.add(Entry(kind="task", name="b", origin="t", family="a"))
    with pytest.raises(ConfigError, match="cycle"):
        reg.resolve("task", "a")
