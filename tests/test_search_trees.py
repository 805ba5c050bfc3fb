"""Search trees stored by the step-level strategies (cells/<id>/trees.jsonl), on the synthetic task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prmbench.plugins import build_registry
from prmbench.results import CELLS_DIR, SAMPLES_FILE, TREES_FILE
from prmbench.runner import RunSpec, Runner
from prmbench.testing.synthetic import SyntheticTask


@pytest.fixture(scope="module")
def registry():
    return build_registry(strict=True)


def _run(tmp: Path, registry, name: str, strategies, strategy_args=None, budget=8) -> Path:
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=tuple(strategies), budgets=(budget,),
                   policy="synthetic", limit=12, seed=0, strategy_args=strategy_args or {})
    return Runner(spec, registry, tmp / name, log=lambda m: None).run()


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _path_to(nodes: list[dict], nid: int) -> list[dict]:
    out = []
    while nid is not None and nid != 0:
        out.append(nodes[nid])
        nid = nodes[nid]["parent"]
    return out[::-1]


@pytest.mark.parametrize("strategy", ["beam_search", "dvts", "mcts", "mcts_rollout"])
def test_trees_hold_every_node_and_the_chosen_path(tmp_path, registry, strategy):
    out = _run(tmp_path, registry, strategy, [strategy, "best_of_n"])
    task = SyntheticTask()
    cell = out / CELLS_DIR / f"synthetic--synthetic_prm--{strategy}--n8"
    records = {r["problem_id"]: r for r in _rows(cell / SAMPLES_FILE)}
    trees = {t["problem_id"]: t for t in _rows(cell / TREES_FILE)}
    assert set(trees) == set(records)
    assert not (out / CELLS_DIR / "synthetic--synthetic_prm--best_of_n--n8" / TREES_FILE).exists()
    for pid, rec in records.items():
        nodes = trees[pid]["nodes"]
        assert [n["id"] for n in nodes] == list(range(len(nodes)))
        assert nodes[0]["parent"] is None and all(n["parent"] < n["id"] for n in nodes[1:])
        steps = [n for n in nodes if n["kind"] == "step"]
        # one node per sampled child: the record's unit count bounds them (empty continuations are dropped)
        assert len(nodes) - 1 <= rec["info"]["units"]
        chosen = [n for n in nodes if n["chosen"]]
        assert len(chosen) == 1
        assert task.join_steps([n["text"] for n in _path_to(nodes, chosen[0]["id"])]) == rec["chosen_text"]
        assert chosen[0]["candidate"] == rec["info"]["chosen_index"]
        assert chosen[0]["score"] == rec["info"]["chosen_score"]
        marked = sorted(n["candidate"] for n in nodes if n["candidate"] is not None)
        assert marked == list(range(rec["n_candidates"]))  # every final candidate is a node
        for n in nodes[1:]:
            assert not (n["finished"] and n["truncated"])
            assert not n["pruned"] or not (n["expanded"] or n["finished"] or n["candidate"] is not None)
        if strategy.startswith("mcts"):
            assert nodes[0]["visits"] == rec["info"]["root_visits"]
            for n in steps:  # own visit + children's visits + rollouts backed up through it
                kids = [c for c in nodes if c["parent"] == n["id"]]
                own = sum(c["visits"] for c in kids if c["kind"] == "step")
                rolls = sum(1 for c in kids if c["kind"] == "rollout")
                assert own + 1 <= n["visits"] <= own + 1 + rolls
        else:
            assert all(n["visits"] is None for n in nodes)
    if strategy == "beam_search":  # 4 beams kept of 16 children: the rest were pruned
        assert any(n["pruned"] for t in trees.values() for n in t["nodes"])


def test_record_tree_false_turns_it_off_and_changes_no_record(tmp_path, registry):
    on = _run(tmp_path, registry, "on", ["beam_search", "mcts"])
    off = _run(tmp_path, registry, "off", ["beam_search", "mcts"], {"record_tree": False})
    for cell in ("synthetic--synthetic_prm--beam_search--n8", "synthetic--synthetic_prm--mcts--n8"):
        assert (on / CELLS_DIR / cell / TREES_FILE).exists()
        assert not (off / CELLS_DIR / cell / TREES_FILE).exists()
        strip = lambda rows: [{**r, "info": {k: v for k, v in r["info"].items() if k != "wall_seconds"},
                               "spend": {k: v for k, v in r["spend"].items() if k != "seconds"}} for r in rows]
        assert strip(_rows(on / CELLS_DIR / cell / SAMPLES_FILE)) == strip(_rows(off / CELLS_DIR / cell / SAMPLES_FILE))


def test_record_tree_must_be_a_boolean(registry):
    from prmbench.errors import ConfigError

    with pytest.raises(ConfigError, match="record_tree=false"):
        registry.build("strategy", "beam_search", {"record_tree": "maybe"})
