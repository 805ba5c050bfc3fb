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
from typing import Any, Callable, Mapping, Sequence

from prmbench.cache import Cache
from prmbench.config import ExecutorConfig
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


@dataclass(frozen=True)
class LabelUnit:
    """A chunk of labelling work: problems whose first annotator writes `solutions` solutions each
    (those not in `done`), or stored solutions (a samples file's). Units are written in `index` order."""

    index: int
    problems: tuple[Problem, ...] = ()
    solutions: tuple[Solution, ...] = ()
    done: frozenset[tuple[str, int]] = frozenset()
    task: str = "labels"

    @property
    def name(self) -> str:
        """`labels#INDEX`, for messages."""
        return f"{self.task}#{self.index}"


@dataclass(frozen=True)
class LabelOutput:
    """A unit's rows: those kept and those the consensus rule dropped; solutions labelled, empty ones skipped."""

    kept: tuple[dict[str, Any], ...]
    dropped: tuple[dict[str, Any], ...]
    labelled: int
    skipped: int


class LabelSolver:
    """Labels units with the spec's task, annotator policies and a cache (on the driver, or on a
    Ray worker that built its own)."""

    def __init__(self, spec: LabelSpec, registry: Registry, cache: Any):
        task_args = dict(spec.task_args)
        if spec.data_file:
            task_args["data_file"] = spec.data_file
        self.spec = spec
        self.task: Task = registry.build("task", spec.task, task_args)
        self.policies = {name: registry.build("policy", name, spec.policy_args) for name in spec.policies}
        for name, pol in self.policies.items():
            if not pol.supports_stepwise:
                raise ConfigError(f"policy {name!r} serves only whole stored solutions, but rollouts continue step "
                                  f"prefixes; use a live policy (hf:MODEL, ...). Stored solutions to label go in --samples")
        self.grader = Grader(self.task, cache)
        gen = GenParams(spec.temperature, spec.top_p, spec.max_tokens)
        self.labellers = [MonteCarloLabeller(name, self.task, pol, cache, gen, spec.seed, spec.rollouts, spec.search,
                                             self.grader) for name, pol in self.policies.items()]

    def identities(self) -> list[dict[str, Any]]:
        """The annotators' identities (the meta file's `annotators`)."""
        return [lab.identity() for lab in self.labellers]

    def solve(self, unit: LabelUnit) -> LabelOutput:
        """The unit's rows, in solution order."""
        return self.label(self.solutions(unit))

    def solutions(self, unit: LabelUnit) -> list[Solution]:
        """The unit's solutions still to label: stored ones, or the first annotator's (not in `done`)."""
        if not unit.problems:
            return list(unit.solutions)
        sols = self.labellers[0].generate_solutions(unit.problems, self.spec.solutions)
        return [s for s in sols if (s.problem.id, s.index) not in unit.done]

    def label(self, chunk: Sequence[Solution]) -> LabelOutput:
        """Rows of `chunk`: every annotator's rollouts, graded together (empty solutions are skipped)."""
        empty = sum(not sol.steps for sol in chunk)
        chunk = [sol for sol in chunk if sol.steps]
        correct = self.grader.correct([(sol.problem, sol.text) for sol in chunk])
        per = {lab.name: lab.annotate(chunk, correct) for lab in self.labellers}
        identities = self.identities()
        kept, dropped = [], []
        for j, sol in enumerate(chunk):
            row, keep = _row(self.task, sol, correct[j], {name: anns[j] for name, anns in per.items()},
                             identities, self.spec.consensus)
            (kept if keep else dropped).append(row)
        return LabelOutput(tuple(kept), tuple(dropped), len(chunk) + empty, empty)

    def close(self) -> None:
        """Close the task and the policies."""
        for comp in [self.task, *self.policies.values()]:
            comp.close()


class LabelJob:
    """Runs a LabelSpec into a label file (see module docstring), on the local or the Ray executor."""

    def __init__(self, spec: LabelSpec, registry: Registry, output: Path, resume: bool = False,
                 log: Callable[[str], None] | None = None, executor: ExecutorConfig | None = None):
        spec.validate()
        self.spec, self.registry, self.output, self.resume = spec, registry, Path(output), resume
        self.executor_config = executor or ExecutorConfig()
        self.executor_config.validate()
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

    def _units(self, task: Task, all_problems: Sequence[Problem], problems: Sequence[Problem],
               done: set[tuple[str, int]]) -> list[LabelUnit]:
        """The work still to do, in chunks: solutions of `problems` (the first --limit of
        `all_problems`) from the samples file (whose ids are checked against all problems), or
        problems whose first annotator writes the solutions."""
        if self.spec.samples:
            chosen = {p.id for p in problems}
            sols = [s for s in read_solutions(task, all_problems, self.spec.samples) if s.problem.id in chosen]
            todo = [s for s in sols if (s.problem.id, s.index) not in done]
            return [LabelUnit(i // LABEL_CHUNK, solutions=tuple(todo[i:i + LABEL_CHUNK]))
                    for i in range(0, len(todo), LABEL_CHUNK)]
        per = self.spec.solutions
        pending = [p for p in problems if any((p.id, j) not in done for j in range(per))]
        step = max(1, LABEL_CHUNK // per)
        return [LabelUnit(i // step, problems=tuple(part), done=frozenset(d for d in done if d[0] in {p.id for p in part}))
                for i in range(0, len(pending), step) for part in [pending[i:i + step]]]

    def run(self) -> Path:
        """Label every solution; returns the output path."""
        s = self.spec
        old = self._prepare()
        cache_path = sidecar(self.output, "cache.sqlite")
        on_ray = self.executor_config.executor == "ray"
        executor: Any = None
        cache: Any = None
        solver: LabelSolver | None = None
        task: Task | None = None
        meta: dict[str, Any] = {}
        try:
            if on_ray:  # the workers build the policies; the driver only the task (its problems and identity)
                from prmbench.executors.ray_executor import LabelWorker, RayExecutor

                task_args = dict(s.task_args)
                if s.data_file:
                    task_args["data_file"] = s.data_file
                task = self.registry.build("task", s.task, task_args)
                executor = RayExecutor(self.executor_config, s, cache_path, worker=LabelWorker, log=self.log)
                executor.start()
                identities = executor.ask("identities")
            else:
                cache = Cache(cache_path)
                solver = LabelSolver(s, self.registry, cache)
                task, identities = solver.task, solver.identities()
            warn_if_test_split(task, self.log)
            all_problems = task.load()
            if not all_problems:
                raise ConfigError(f"task {s.task!r} loaded no problems; check its data file")
            problems = all_problems[: s.limit] if s.limit else all_problems
            meta = {
                "kind": "prmbench-labels", "config": s.to_json(), "config_hash": s.hash(),
                "created": (old or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "status": "running", "task": {**task.identity(), "n_problems": len(problems),
                                              "data_fingerprint": task.data_fingerprint(problems)},
                "annotators": identities,
                "executor": {"executor": "local"} if executor is None else {**executor.describe(1),
                                                                             "unit_size": LABEL_CHUNK},
            }
            write_json_atomic(self.meta_path, meta)
            done = {(r["problem_id"], r["solution_index"]) for path in (self.output, self.dropped_path)
                    for r in _existing(path)}
            if done:
                self.log(f"resuming: {len(done)} solutions already labelled")
            units = self._units(task, all_problems, problems, done)
            with open(self.output, "a") as kept_f, open(self.dropped_path, "a") as drop_f:
                n_new = [0]

                def emit(unit: LabelUnit, out: LabelOutput) -> None:
                    _append(kept_f, out.kept)
                    _append(drop_f, out.dropped)
                    n_new[0] += out.labelled
                    if out.skipped:
                        self.log(f"skipped {out.skipped} empty solution(s): no step to label")
                    self.log(f"labelled {len(done) + n_new[0]} solutions ({len(out.dropped)} dropped in this chunk)")

                if executor is None:
                    assert solver is not None
                    for unit in units:
                        emit(unit, solver.solve(unit))
                else:
                    executor.execute(units, 1, emit, lambda unit: None)
        except BaseException as e:
            if meta:
                meta["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}"
                meta["totals"] = totals(self.output)
                write_json_atomic(self.meta_path, meta)
            raise
        finally:
            try:
                if executor is not None:
                    executor.close()
            finally:
                if cache is not None:
                    cache.close()
                if solver is not None:
                    solver.close()
                elif task is not None:
                    task.close()
        meta["status"] = "complete"
        meta["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        meta["totals"] = totals(self.output)
        write_json_atomic(self.meta_path, meta)
        t = meta["totals"]
        self.log(f"{t['kept']} solutions kept, {t['dropped']} dropped by --consensus {s.consensus}; "
                 f"label cost {t['label_flops']:.3g} FLOPs -> {self.output}")
        return self.output


def label(spec: LabelSpec, registry: Registry, output: str | Path, resume: bool = False,
          executor: ExecutorConfig | None = None) -> Path:
    """Python API: run `spec` into the label file `output` (see LabelJob)."""
    return LabelJob(spec, registry, Path(output), resume=resume, executor=executor).run()
