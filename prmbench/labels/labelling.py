"""`prmbench label`: Monte Carlo step labels for a task's problems, written as a label file.

Files beside the output `LABELS.jsonl` (the kept rows):

- `LABELS.dropped.jsonl`: rows the consensus rule dropped (same schema);
- `LABELS.meta.json`: the resolved configuration and its hash (what `--resume` checks), the
  annotators' identities, status and totals recomputed from the two row files (solutions,
  kept, dropped, label FLOPs);
- `LABELS.cache.sqlite`: the generation and grade cache, so an interrupted labelling resumes
  without recomputing anything it finished.

A row: `problem_id`, `task`, `question`, `solution_index`, `solution_source`, `steps`, `text`,
`mc_values` (per step, the share of correct rollouts; pooled over annotators), `labels` (hard:
mc > 0 with linear search; with binary search 1 before the first error, 0 at it, None after;
with several annotators the labels all of them agree on), `first_error` (None: no error),
`rollouts` (per step, each with `text` = the full solution text as graded, `correct`,
`finish_reason`, `annotator`), `solution_correct`, `per_annotator` (each annotator's
mc_values, labels, first_error, spend), `annotators` (identities), `consensus`, `spend` and
`label_flops` (everything the row cost: the solution's generation and all rollouts).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from prmbench.cache import Cache
from prmbench.context import GenParams
from prmbench.errors import ConfigError, DataError
from prmbench.evaluate import ID_FIELDS, TEXT_FIELDS, problem_of
from prmbench.interfaces import Task, config_hash
from prmbench.jsonl import read_jsonl_rows
from prmbench.labels.consensus import RULES, combine
from prmbench.labels.montecarlo import Annotation, Grader, MonteCarloLabeller, Solution, annotations_by_step
from prmbench.labels.search import SEARCHES
from prmbench.registry import Registry
from prmbench.results import drop_torn_tail, read_jsonl, write_json_atomic
from prmbench.types import Problem

#: Solutions labelled together (one batched policy call and one grade_many per search round).
LABEL_CHUNK = 16
#: Task splits whose labels can train a PRM that is evaluated elsewhere; others get a warning.
TRAINING_SPLITS = ("train", "generated")


@dataclass(frozen=True)
class LabelSpec:
    """A fully resolved labelling configuration; its hash identifies the label file for --resume."""

    task: str
    policies: tuple[str, ...]
    rollouts: int = 8
    search: str = "linear"
    consensus: str = "none"
    solutions: int = 1
    samples: str | None = None
    samples_sha256: str | None = None
    limit: int | None = None
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    task_args: Mapping[str, Any] = field(default_factory=dict)
    policy_args: Mapping[str, Any] = field(default_factory=dict)
    data_file: str | None = None
    include_paths: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (as stored in the meta file)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def hash(self) -> str:
        """Hash of everything that affects the labels."""
        return config_hash(self.to_json())

    def validate(self) -> None:
        """Reject settings that cannot give labels, each with the fix."""
        if not self.policies:
            raise ConfigError("--policy is empty: name at least one annotator policy (see `prmbench ls policies`)")
        if len(set(self.policies)) != len(self.policies):
            raise ConfigError(f"--policy names an annotator twice ({','.join(self.policies)}); give each once")
        if self.rollouts < 1:
            raise ConfigError(f"--rollouts must be a positive integer (got {self.rollouts})")
        if self.search not in SEARCHES:
            raise ConfigError(f"--search must be one of {', '.join(SEARCHES)} (got {self.search!r})")
        if self.consensus not in RULES:
            raise ConfigError(f"--consensus must be one of {', '.join(RULES)} (got {self.consensus!r})")
        if self.consensus == "all" and len(self.policies) < 2:
            raise ConfigError("--consensus all needs several annotators: --policy A,B[,C]")
        if self.solutions < 1:
            raise ConfigError(f"--solutions must be a positive integer (got {self.solutions})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be a positive integer (got {self.limit})")
        if self.temperature < 0 or not (0 < self.top_p <= 1) or self.max_tokens < 1:
            raise ConfigError("sampling settings out of range: need --temperature >= 0, 0 < --top-p <= 1, --max-tokens >= 1")
        if self.temperature == 0 and self.rollouts > 1:
            raise ConfigError(f"--temperature 0 makes all {self.rollouts} rollouts of a prefix the same; "
                              f"use --temperature > 0 or --rollouts 1")


def sidecar(output: Path, kind: str) -> Path:
    """A file beside the label file: LABELS.jsonl -> LABELS.<kind>."""
    stem = output.name[: -len(".jsonl")] if output.name.endswith(".jsonl") else output.name
    return output.with_name(f"{stem}.{kind}")


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes (samples files are part of the labelling's identity)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def warn_if_test_split(task: Task, log: Callable[[str], None]) -> None:
    """Warn that labels of an evaluation split must not train a PRM evaluated on it.

    A task declares its split with a `split` attribute; tasks without one are benchmark (test)
    sets.
    """
    split = getattr(task, "split", None) or "test"
    if split not in TRAINING_SPLITS:
        log(f"warning: task {task.name!r} is an evaluation ({split}) split: these labels must not train a "
            f"PRM that is evaluated on {task.name!r} (or on problems it shares)")


def read_solutions(task: Task, problems: Sequence[Problem], path: str) -> list[Solution]:
    """Solutions of a samples file: rows with a problem id (`problem_id`/`task_id`) and either
    `steps` (a list of strings) or a completion (`completion`/`solution`, split by the task)."""
    p = Path(path)
    by_id = {pr.id: pr for pr in problems}
    counts: dict[str, int] = {}
    out = []
    for line, row in read_jsonl_rows(p, "samples file"):
        where = f"{p}:{line}"
        pid = next((row[f] for f in ID_FIELDS if f in row), None)
        if pid is None:
            raise DataError(f"{where}: row has no problem id field (expected one of: {', '.join(ID_FIELDS)})")
        problem = problem_of(by_id, pid, task, where)
        if "steps" in row:
            steps = row["steps"]
            if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                raise DataError(f"{where}: field 'steps' must be a list of strings")
            text = task.join_steps(steps)
        else:
            text = next((row[f] for f in TEXT_FIELDS if f in row), None)
            if not isinstance(text, str):
                raise DataError(f"{where}: row needs 'steps' (list of strings) or a completion string "
                                f"(one of: {', '.join(TEXT_FIELDS)})")
            steps = task.split_steps(text)
        index = counts.get(problem.id, 0)
        counts[problem.id] = index + 1
        out.append(Solution(problem=problem, index=index, steps=tuple(steps), text=text, source=f"samples:{where}"))
    return out


def _row(task: Task, sol: Solution, correct: bool, anns: Mapping[str, Annotation],
         identities: Sequence[Mapping[str, Any]], rule: str) -> tuple[dict[str, Any], bool]:
    cons = combine(anns, rule)
    spend = sol.spend
    for a in anns.values():
        spend = spend + a.spend
    row = {
        "problem_id": sol.problem.id, "task": task.name, "question": sol.problem.question,
        "solution_index": sol.index, "solution_source": sol.source, "finish_reason": sol.finish_reason,
        "steps": list(sol.steps), "text": sol.text,
        "mc_values": list(cons.mc_values), "labels": list(cons.labels), "first_error": cons.first_error,
        "solution_correct": correct,
        "rollouts": annotations_by_step(anns),
        "per_annotator": {name: a.to_json() for name, a in anns.items()},
        "annotators": list(identities),
        "consensus": {"rule": rule, "agree": cons.agree,
                      "first_errors": {name: a.first_error for name, a in anns.items()}},
        "search": next(iter(anns.values())).search,
        "solution_spend": sol.spend.to_json(),
        "spend": spend.to_json(), "label_flops": spend.flops,
    }
    return row, cons.keep


def _append(f: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        f.write("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def _existing(path: Path) -> list[dict[str, Any]]:
    """Rows already written (a torn last line, left by a crash, is cut off)."""
    if not path.exists():
        return []
    drop_torn_tail(path)
    return list(read_jsonl(path))


def totals(output: Path) -> dict[str, Any]:
    """Counts and label FLOPs recomputed from the kept and dropped row files."""
    kept, dropped = _existing(output), _existing(sidecar(output, "dropped.jsonl"))
    rows = kept + dropped
    return {"solutions": len(rows), "kept": len(kept), "dropped": len(dropped),
            "steps_labelled": sum(len(r["steps"]) for r in kept),
            "label_flops": sum(r["label_flops"] for r in rows),
            "policy_calls": sum(r["spend"]["policy_calls"] for r in rows),
            "generated_tokens": sum(r["spend"]["generated_tokens"] for r in rows)}


class LabelJob:
    """Runs a LabelSpec into a label file (see module docstring)."""

    def __init__(self, spec: LabelSpec, registry: Registry, output: Path, resume: bool = False,
                 log: Callable[[str], None] | None = None):
        spec.validate()
        self.spec, self.registry, self.output, self.resume = spec, registry, Path(output), resume
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.meta_path = sidecar(self.output, "meta.json")
        self.dropped_path = sidecar(self.output, "dropped.jsonl")

    def _prepare(self) -> dict[str, Any] | None:
        if self.meta_path.exists():
            old = json.loads(self.meta_path.read_text())
            if not self.resume:
                raise ConfigError(f"{self.output} already holds labels; pass --resume to continue, or choose a new --output")
            if old.get("config_hash") != self.spec.hash():
                raise ConfigError(f"{self.output} holds labels made with a different configuration (hash "
                                  f"{old.get('config_hash')} vs {self.spec.hash()}); --resume needs exactly the same "
                                  f"flags (and samples file), or choose a new --output")
            return old  # type: ignore[no-any-return]
        if self.output.exists() and not self.resume:
            raise ConfigError(f"{self.output} exists; choose a new --output (or pass --resume to continue it)")
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot write --output {self.output}: {e.strerror or e}; choose a writable path") from e
        return None

    def _solutions(self, task: Task, labellers: Sequence[MonteCarloLabeller], all_problems: Sequence[Problem],
                   problems: Sequence[Problem], done: set[tuple[str, int]]) -> Iterator[list[Solution]]:
        """Chunks of solutions still to label: of `problems` (the first --limit of `all_problems`),
        from the samples file (whose ids are checked against all problems), or from the first annotator."""
        if self.spec.samples:
            chosen = {p.id for p in problems}
            sols = [s for s in read_solutions(task, all_problems, self.spec.samples) if s.problem.id in chosen]
            todo = [s for s in sols if (s.problem.id, s.index) not in done]
            for i in range(0, len(todo), LABEL_CHUNK):
                yield todo[i:i + LABEL_CHUNK]
            return
        per = self.spec.solutions
        pending = [p for p in problems if any((p.id, j) not in done for j in range(per))]
        step = max(1, LABEL_CHUNK // per)
        for i in range(0, len(pending), step):
            sols = labellers[0].generate_solutions(pending[i:i + step], per)
            yield [s for s in sols if (s.problem.id, s.index) not in done]

    def run(self) -> Path:
        """Label every solution; returns the output path."""
        s = self.spec
        old = self._prepare()
        task_args = dict(s.task_args)
        if s.data_file:
            task_args["data_file"] = s.data_file
        task = self.registry.build("task", s.task, task_args)
        policies = {name: self.registry.build("policy", name, s.policy_args) for name in s.policies}
        for name, pol in policies.items():
            if not pol.supports_stepwise:
                raise ConfigError(f"policy {name!r} serves only whole stored solutions, but rollouts continue step "
                                  f"prefixes; use a live policy (hf:MODEL, ...). Stored solutions to label go in --samples")
        warn_if_test_split(task, self.log)
        all_problems = task.load()
        if not all_problems:
            raise ConfigError(f"task {s.task!r} loaded no problems; check its data file")
        problems = all_problems[: s.limit] if s.limit else all_problems
        cache = Cache(sidecar(self.output, "cache.sqlite"))
        grader = Grader(task, cache)
        gen = GenParams(s.temperature, s.top_p, s.max_tokens)
        labellers = [MonteCarloLabeller(name, task, pol, cache, gen, s.seed, s.rollouts, s.search, grader)
                     for name, pol in policies.items()]
        identities = [lab.identity() for lab in labellers]
        meta: dict[str, Any] = {
            "kind": "prmbench-labels", "config": s.to_json(), "config_hash": s.hash(),
            "created": (old or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "status": "running", "task": {**task.identity(), "n_problems": len(problems),
                                          "data_fingerprint": task.data_fingerprint(problems)},
            "annotators": identities,
        }
        write_json_atomic(self.meta_path, meta)
        done = {(r["problem_id"], r["solution_index"]) for path in (self.output, self.dropped_path)
                for r in _existing(path)}
        if done:
            self.log(f"resuming: {len(done)} solutions already labelled")
        n_new = 0
        try:
            with open(self.output, "a") as kept_f, open(self.dropped_path, "a") as drop_f:
                for chunk in self._solutions(task, labellers, all_problems, problems, done):
                    kept, dropped = self._label_chunk(task, labellers, identities, grader, chunk)
                    _append(kept_f, kept)
                    _append(drop_f, dropped)
                    n_new += len(chunk)
                    self.log(f"labelled {len(done) + n_new} solutions ({len(dropped)} dropped in this chunk)")
        except BaseException as e:
            meta["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}"
            meta["totals"] = totals(self.output)
            write_json_atomic(self.meta_path, meta)
            raise
        finally:
            cache.close()
            for comp in [task, *policies.values()]:
                comp.close()
        meta["status"] = "complete"
        meta["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        meta["totals"] = totals(self.output)
        write_json_atomic(self.meta_path, meta)
        t = meta["totals"]
        self.log(f"{t['kept']} solutions kept, {t['dropped']} dropped by --consensus {s.consensus}; "
                 f"label cost {t['label_flops']:.3g} FLOPs -> {self.output}")
        return self.output

    def _label_chunk(self, task: Task, labellers: Sequence[MonteCarloLabeller], identities: Sequence[Mapping[str, Any]],
                     grader: Grader, chunk: Sequence[Solution]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        empty = sum(not sol.steps for sol in chunk)
        if empty:
            self.log(f"skipped {empty} empty solution(s): no step to label")
        chunk = [sol for sol in chunk if sol.steps]
        correct = grader.correct([(sol.problem, sol.text) for sol in chunk])
        per = {lab.name: lab.annotate(chunk, correct) for lab in labellers}
        kept, dropped = [], []
        for j, sol in enumerate(chunk):
            row, keep = _row(task, sol, correct[j], {name: anns[j] for name, anns in per.items()},
                             identities, self.spec.consensus)
            (kept if keep else dropped).append(row)
        return kept, dropped


def label(spec: LabelSpec, registry: Registry, output: str | Path, resume: bool = False) -> Path:
    """Python API: run `spec` into the label file `output` (see LabelJob)."""
    return LabelJob(spec, registry, Path(output), resume=resume).run()
