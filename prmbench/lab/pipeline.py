"""`prmbench lab`: the stages, each resumable, with their wall times in ``DIR/lab_times.json``.

Stages (in order): ``policies`` (train two annotator policies per domain, cached by config hash),
``labels`` (Monte Carlo step labels of solutions to ``train``-split problems by both annotators,
`prmbench.labels.labelling.LabelJob`, consensus recorded per solution), ``prms`` (value-head
PRMs per domain, on two backbones, and on the consensus-filtered labels), ``search`` (per domain,
`prmbench.runner.Runner` runs on the ``test`` split: the math- and code-trained PRMs, random and
oracle x every strategy x every budget, unit n; the other PRMs x best-of-N), ``similarity``
(Table 2: gradient-based similarity of math-PRM-chosen vs code-PRM-chosen responses) and
``summary`` (leaderboard, tables, figures, lab_summary.json).
A finished stage is recorded in ``DIR/lab_state.json`` and skipped on the next run; an
interrupted one resumes from what it wrote (label files and run folders resume themselves).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from prmbench.errors import ConfigError
from prmbench.interfaces import config_hash
from prmbench.lab.config import DOMAINS, LabConfig
from prmbench.results import write_json_atomic

STAGES = ("policies", "labels", "prms", "stepeval", "search", "similarity", "summary")
POLICY_ARGS = {"device": "cpu", "dtype": "float32", "batch_size": 64}
#: Problems searched at once (records are the same at any concurrency; bigger generation batches).
SEARCH_CONCURRENCY = 16


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the training workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _one_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` with one torch thread (the body of a worker process of `Lab._parallel`)."""
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def _log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


class Lab:
    """One lab output folder: runs the missing stages of `cfg` into `out` (see module docstring)."""

    def __init__(self, cfg: LabConfig, out: Path, cache_dir: Path | None = None, threads: int = 1) -> None:
        self.cfg, self.out, self.threads = cfg, Path(out), threads
        self.cache = Path(cache_dir) if cache_dir else self.out / "models"
        self.state_path = self.out / "lab_state.json"
        self.state: dict[str, Any] = {"config_hash": config_hash(cfg.to_json()), "done": {}, "times": {}}

    # -- state -----------------------------------------------------------------------------------
    def _load_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.state_path.is_file():
            old = json.loads(self.state_path.read_text())
            if old.get("config_hash") != self.state["config_hash"]:
                raise ConfigError(f"{self.out} holds a lab of another configuration (seed or --quick differ); "
                                  f"pass another --output or the same flags")
            self.state = old
        write_json_atomic(self.out / "lab_config.json", self.cfg.to_json())

    def _save(self) -> None:
        write_json_atomic(self.state_path, self.state)

    def run(self) -> dict[str, Any]:
        """Run every stage not yet done; return the summary."""
        self._load_state()
        import torch

        torch.set_num_threads(max(1, self.threads))  # labels, step evaluation and search run in this process
        steps: dict[str, Callable[[], Any]] = {
            "policies": self.stage_policies, "labels": self.stage_labels, "prms": self.stage_prms,
            "stepeval": self.stage_stepeval,
            "search": self.stage_search, "similarity": self.stage_similarity, "summary": self.stage_summary,
        }
        for name in STAGES:
            if name in self.state["done"]:
                _log(f"stage {name}: done before, skipped")
                continue
            _log(f"stage {name} ...")
            t0, c0 = time.perf_counter(), _cpu_seconds()
            self.state["done"][name] = steps[name]()
            self.state["times"][name] = round(time.perf_counter() - t0, 2)
            self.state.setdefault("cpu_times", {})[name] = round(_cpu_seconds() - c0, 2)
            self._save()
            _log(f"stage {name}: {self.state['times'][name]:.1f} s wall, {self.state['cpu_times'][name]:.1f} s CPU")
        write_json_atomic(self.out / "lab_times.json", self.state["times"])
        write_json_atomic(self.out / "lab_cpu_times.json", self.state.get("cpu_times", {}))
        return json.loads((self.out / "lab_summary.json").read_text())

    # -- stages ----------------------------------------------------------------------------------
    def _parallel(self, fn: Callable[..., Any], jobs: list[tuple[Any, ...]]) -> list[Any]:
        """`fn(*job)` for every job, `self.threads` at a time in spawned processes (one torch thread
        each; every job is seeded on its own, so results do not depend on the order or the number of
        processes); one job or one thread: in this process."""
        if self.threads < 2 or len(jobs) < 2:
            return [fn(*job) for job in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(self.threads, len(jobs)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            return [f.result() for f in [pool.submit(_one_thread, fn, *job) for job in jobs]]

    def stage_policies(self) -> dict[str, list[str]]:
        """Train (or reuse) both annotators of each domain."""
        from prmbench.lab.trainer import train_policy

        specs = [(d, s) for d in DOMAINS for s in self.cfg.policies[d]]
        dirs = [str(p) for p in self._parallel(train_policy, [(s, self.cache, True, 1) for _, s in specs])]
        return {d: [p for (dd, _), p in zip(specs, dirs) if dd == d] for d in DOMAINS}

    def policy_dirs(self, domain: str) -> list[str]:
        """The trained policy folders of `domain` (annotator a first)."""
        return list(self.state["done"]["policies"][domain])

    def _label(self, domain: str, split: str, n: int, path: Path) -> str:
        from prmbench.cli import _registry
        from prmbench.labels.labelling import LabelJob, LabelSpec

        spec = LabelSpec(task=domain, policies=tuple(f"hf:{p}" for p in self.policy_dirs(domain)),
                         rollouts=self.cfg.rollouts, consensus="none", solutions=1, seed=self.cfg.seed,
                         temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens,
                         task_args=self.cfg.task_args(domain, split, n), policy_args=POLICY_ARGS)
        spec.validate()
        LabelJob(spec, _registry(()), path, resume=path.exists()).run()
        return str(path)

    def stage_labels(self) -> dict[str, str]:
        """Label one solution per train-split problem (PRM training) and per held-out test-split problem
        (step-level evaluation) with both annotators, consensus recorded (``<domain>-both``), and derive
        the training sets: annotator a's own labels of every solution (``<domain>``, unfiltered) and the
        consensus-filtered rows (``<domain>-filtered``); name -> label file."""
        out: dict[str, str] = {}
        for part in self._parallel(self._domain_labels, [(d,) for d in DOMAINS]):  # one process per domain
            out.update(part)
        return out

    def _domain_labels(self, d: str) -> dict[str, str]:
        from prmbench.lab.prm import annotator_labels, filter_consensus

        both = self._label(d, "train", self.cfg.label_problems, self.out / "labels" / f"{d}-both.jsonl")
        return {d: str(annotator_labels(Path(both), self.out / "labels" / f"{d}.jsonl")),
                f"{d}-filtered": str(filter_consensus(Path(both), self.out / "labels" / f"{d}-filtered.jsonl")),
                f"{d}-heldout": self._label(d, "test", self.cfg.eval_problems, self.out / "labels" / f"{d}-heldout.jsonl")}

    def stage_stepeval(self) -> dict[str, Any]:
        """Each PRM (and random) on the held-out labelled solutions of each domain; metrics."""
        from prmbench.cli import _registry
        from prmbench.lab.stepeval import evaluate

        labels = self.state["done"]["labels"]
        rms = {n: s for n, s in self.rm_specs().items() if n != "oracle"}
        return {d: evaluate(_registry(()), d, self.cfg.task_args(d, "test", self.cfg.eval_problems), rms,
                            Path(labels[f"{d}-heldout"]), self.out / "stepeval")
                for d in DOMAINS}

    def stage_prms(self) -> dict[str, str]:
        """Train every PRM of the config with train-prm (`prmbench.lab.prm`); name -> checkpoint folder."""
        from prmbench.lab.prm import train_prm

        labels = self.state["done"]["labels"]
        jobs = [(p, Path(self.policy_dirs(p.domain)[p.backbone]),
                 Path(labels[f"{p.domain}-filtered" if p.filtered else p.domain]), self.cache, self.cfg.seed, 1)
                for p in self.cfg.prms]
        return dict(zip((p.name for p in self.cfg.prms), (str(p) for p in self._parallel(train_prm, jobs))))

    def rm_specs(self, main: bool | None = None) -> dict[str, str]:
        """Lab name -> registry spec of the reward models: PRMs as value_head_prm:DIR, random, oracle.

        `main=True`: those of the full cross-run (the math- and code-trained PRMs on annotator a's
        backbone, random, oracle); `main=False`: the other PRMs (size b, filtered labels), which
        run best-of-N only; None: all.
        """
        prms = self.state["done"]["prms"]
        core = {f"{d.removeprefix('lab_')}_prm_a" for d in DOMAINS}
        specs = {n: f"value_head_prm:{p}" for n, p in prms.items() if main is None or (n in core) == main}
        return {**specs, "random": "random", "oracle": "oracle"} if main in (None, True) else specs

    def _cross_run(self, domain: str, name: str, rms: tuple[str, ...], strategies: tuple[str, ...]) -> str:
        from prmbench.cli import _registry
        from prmbench.runner import Runner, RunSpec

        run_dir = self.out / "runs" / name
        spec = RunSpec(tasks=(domain,), rms=rms, strategies=strategies, budgets=self.cfg.budgets,
                       policy=f"hf:{self.policy_dirs(domain)[0]}", seed=self.cfg.seed,
                       temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens,
                       task_args=self.cfg.task_args(domain, "test", self.cfg.n_problems),
                       policy_args=POLICY_ARGS, budget_unit="n")
        spec.validate()
        Runner(spec, _registry(()), run_dir, resume=(run_dir / "run.json").exists(),
               concurrency=SEARCH_CONCURRENCY).run()
        return str(run_dir)

    def stage_search(self) -> dict[str, str]:
        """Per domain (annotator a's policy, test split): the full cross-run and a best-of-N run of the
        other PRMs, one process per domain; run name -> folder."""
        out: dict[str, str] = {}
        for part in self._parallel(self._domain_search, [(d,) for d in DOMAINS]):
            out.update(part)
        return out

    def _domain_search(self, d: str) -> dict[str, str]:
        out = {d: self._cross_run(d, d, tuple(self.rm_specs(True).values()), self.cfg.strategies)}
        extra = tuple(self.rm_specs(False).values())
        if extra:
            out[f"{d}-bon"] = self._cross_run(d, f"{d}-bon", extra, ("best_of_n",))
        return out

    def cell(self, run_name: str, rm: str, strategy: str, budget: int) -> Any:
        """The CellResult of lab reward model `rm` (a lab name, e.g. ``math_prm_a``) in search run `run_name`."""
        from prmbench.results import load_run

        spec = self.rm_specs()[rm] if rm in self.rm_specs() else rm
        for c in load_run(self.state["done"]["search"][run_name]).cells:
            if c.rm == spec and c.strategy == strategy and c.budget == budget:
                return c
        raise KeyError(f"no cell {rm}/{strategy}/{budget} in run {run_name}")

    def stage_similarity(self) -> dict[str, Any]:
        """Table 2 in miniature (`prmbench.lab.similarity`): S of PRM-chosen vs plain responses."""
        from prmbench.lab.similarity import similarity_table, response_sets

        top = max(self.cfg.budgets)
        cells = {"MathPRM": self.cell("lab_math", "math_prm_a", "best_of_n", top),
                 "CodePRM": self.cell("lab_code", "code_prm_a", "best_of_n", top),
                 "Math": self.cell("lab_math", "random", "best_of_n", top),
                 "Code": self.cell("lab_code", "random", "best_of_n", top)}
        refs = {f"{d}_policy_a": Path(self.policy_dirs(d)[0]) for d in DOMAINS}
        table = similarity_table(response_sets(cells), refs)
        write_json_atomic(self.out / "similarity.json", table)
        return table

    def stage_summary(self) -> dict[str, Any]:
        """Leaderboard and lab_summary.json (see `prmbench.lab.summary`)."""
        from prmbench.lab.summary import write_summary

        return write_summary(self)
