"""Search trees of the step-level strategies, as stored in `cells/<id>/trees.jsonl`.

A `TreeRecorder` is fed by the `Expander` (every expansion child and every rollout) and, at the
end of a search, told the final candidates and the chosen one. Its row for a problem:

    {"problem_id": ..., "strategy": ..., "nodes": [
        {"id": 0, "parent": null, "text": "", "score": null, ...},          # the empty solution
        {"id": 1, "parent": 0, "text": "first step", "score": 0.71, "step_scores": [0.71],
         "depth": 1, "kind": "step" | "rollout", "finished": bool, "truncated": bool,
         "expanded": bool, "candidate": index in SearchResult.candidates | null,
         "chosen": bool, "pruned": bool, "visits": int | null, "value": float | null}, ...]}

`text` is what the node adds to its parent (the new step or steps; a rollout's whole continuation).
`pruned` marks a live partial solution the search dropped (never expanded, not a candidate:
beam search's losers); `visits`/`value` are MCTS's visit count and mean backed-up value.
Recording costs one dict per sampled child (see benchmarks/bench_tree_recording.py).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from prmbench.types import Candidate, SearchResult


class TreeRecorder:
    """Collects the nodes of one search (see the module docstring)."""

    def __init__(self, join: Callable[[Sequence[str]], str]) -> None:
        self.join = join  # the task's join_steps: a path's node texts joined give its solution text
        self.nodes: list[dict[str, Any]] = [_node(0, None, "", None, (), 0, "root", "stop")]
        self._by_obj: dict[int, int] = {}  # id(candidate) -> node id (candidates are immutable, kept alive by us)
        self._keep: list[Candidate] = []

    def node_of(self, cand: Candidate | None) -> int:
        """The node id of a recorded candidate (0: the empty solution or an unknown one)."""
        return 0 if cand is None else self._by_obj.get(id(cand), 0)

    def add(self, parent: Candidate | None, child: Candidate, kind: str = "step") -> int:
        """Record `child` below `parent` (None: the empty solution); returns its node id."""
        pid = self.node_of(parent)
        self.nodes[pid]["expanded"] = True
        base = len(parent.steps) if parent is not None else 0
        new = child.steps[base:] if kind == "step" else child.steps[base:] or (child.text,)
        nid = len(self.nodes)
        self.nodes.append(_node(nid, pid, self.join(new), child.score, child.step_scores[base:],
                                self.nodes[pid]["depth"] + 1, kind, child.finish_reason))
        self._by_obj[id(child)] = nid
        self._keep.append(child)
        return nid

    def set_stats(self, cand: Candidate | None, visits: int, value: float) -> None:
        """MCTS statistics of a recorded node."""
        node = self.nodes[self.node_of(cand)]
        node["visits"], node["value"] = int(visits), round(float(value), 6)

    def finish(self, result: SearchResult, prune: bool) -> dict[str, Any]:
        """Mark the final candidates and the chosen one (and, with `prune`, the dropped live
        nodes); returns the tree's JSON (`nodes`)."""
        by_steps: dict[tuple[str, ...], int] = {}
        for cand, nid in ((c, self._by_obj[id(c)]) for c in self._keep):
            by_steps.setdefault(cand.steps, nid)
        for i, cand in enumerate(result.candidates):
            nid = self._by_obj.get(id(cand), by_steps.get(cand.steps))
            if nid is None:
                continue
            node = self.nodes[nid]
            node["candidate"] = i
            if cand.finish_reason == "length":
                node["truncated"] = True  # a partial solution left when the search stopped
            if i == result.chosen:
                node["chosen"] = True
        if prune:
            for node in self.nodes[1:]:
                if not (node["expanded"] or node["finished"] or node["truncated"]) and node["candidate"] is None:
                    node["pruned"] = True
        return {"nodes": self.nodes}


def _node(nid: int, parent: int | None, text: str, score: float | None, step_scores: Iterable[float],
          depth: int, kind: str, finish: str) -> dict[str, Any]:
    return {"id": nid, "parent": parent, "text": text, "score": score,
            "step_scores": [round(float(s), 6) for s in step_scores], "depth": depth, "kind": kind,
            "finished": finish == "eos", "truncated": finish == "length", "expanded": False,
            "candidate": None, "chosen": False, "pruned": False, "visits": None, "value": None}
