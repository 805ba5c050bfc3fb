"""The `prmbench` command line: ls, run, evaluate-samples, score, label, label-merge, leaderboard, report, compare,
train-prm, plot-training, similarity (and the step-level commands)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from prmbench.errors import ConfigError, PrmbenchError
from prmbench.registry import Registry, parse_args_string

EPILOG_MAIN = """examples:
  prmbench ls tasks
  prmbench run --tasks math500 --policy hf:Qwen/Qwen2.5-Math-1.5B-Instruct --rm oracle,random \\
               --strategy best_of_n,majority_vote --budget 1,4,16 --limit 50
  prmbench leaderboard runs/my-run --format markdown --plot acc.png
  prmbench report runs/my-run --output report.html
  prmbench compare runs/base runs/my-run --max-drop 0.02
"""

EPILOG_RUN = """examples:
  # offline, local data and a local model
  PRMBENCH_DATA_DIR=../shared/data prmbench run --tasks math500 --policy hf:/models/tiny \\
      --rm oracle,random --strategy best_of_n,majority_vote --budget 1,4 --limit 10 --output runs/demo
  # re-select saved generations offline
  prmbench run --tasks math500 --policy replay:samples.jsonl.gz --rm random --strategy best_of_n_min --budget 4
  # continue an interrupted run (same flags)
  prmbench run ... --output runs/demo --resume
  # search 32 problems at once, their generation and scoring batched together (same records)
  prmbench run ... --strategy beam_search,mcts --concurrency 32
  # search strategies at compute matched to best-of-4 and best-of-16 (the default unit n)
  prmbench run --tasks math500 --policy hf:/models/tiny --rm random \\
      --strategy best_of_n,weighted_majority,beam_search,mcts,dvts --budget 4,16 --limit 10
  # the same strategies under explicit caps: 2000 generated tokens, or 30 model-call seconds
  prmbench run ... --budget-unit tokens --budget 2000
  prmbench run ... --budget-unit seconds --budget 30
  # component arguments: K=V reaches every strategy that takes K, NAME:K=V only NAME
  prmbench run ... --strategy best_of_n,majority_vote,beam_search --strategy-args aggregation=min,beam_search:beam_width=2
  # step-level tasks: labelled solutions scored step by step (no --policy/--strategy/--budget)
  prmbench run --tasks processbench_gsm8k,processbench_math,prm800k_test,prmbench_prm800k --rm random,math_prm
  prmbench run --tasks processbench --rm math_prm --task-args calibrate_on=gsm8k,threshold=0.5
  # a model behind an OpenAI-compatible server you run (vllm serve, sglang, transformers serve DIR)
  prmbench run --tasks math500 --policy openai:/models/tiny --policy-args base_url=http://127.0.0.1:8000/v1 \\
      --rm oracle --strategy best_of_n,beam_search --budget 4 --limit 10
  # prmbench starts and stops the server itself (pip install 'prmbench[vllm]')
  prmbench run --tasks humaneval_plus --policy vllm:Qwen/Qwen2.5-Coder-7B-Instruct \\
      --policy-args gpu_memory_utilization=0.45 --rm code_prm --strategy best_of_n --budget 8
  # on a Ray cluster: one worker per GPU, each owning the policy and the reward models (pip install 'prmbench[ray]')
  ray start --head                      # on the head node; `ray start --address HEAD:6379` on the others
  prmbench run --tasks math500 --policy hf:Qwen/Qwen2.5-Math-1.5B-Instruct --rm math_prm \\
      --strategy best_of_n,beam_search --budget 4,16 --executor ray --ray-address auto --ray-gpus-per-worker 1
  # a local Ray instance with two CPU workers (same records as --executor local; resume on either)
  prmbench run ... --executor ray --ray-workers 2 --ray-gpus-per-worker 0
  # the instant synthetic environment (known per-step correctness)
  prmbench run --tasks synthetic --policy synthetic --rm synthetic_prm,random --strategy best_of_n,mcts --budget 4

Comma lists expand to the full cross product of tasks x reward models x strategies x budgets.
Budget N is the compute best-of-N spends on a problem (see README, "Budgets").
"""

LS_KINDS = {"tasks": "task", "rms": "rm", "strategies": "strategy", "policies": "policy"}


def _registry(include_paths: Sequence[str] = ()) -> Registry:
    from prmbench.plugins import build_registry

    return build_registry(include_paths=include_paths or ())


# -- ls ---------------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    """List registered components or plugins."""
    from tabulate import tabulate

    reg = _registry(args.include_path)
    if args.what == "plugins":
        rows = [[p["name"], p["origin"], p["status"]] for p in reg.plugins]
        print(tabulate(rows, headers=["plugin", "origin", "status"], tablefmt="simple"))
        return 0
    kind = LS_KINDS[args.what]
    rows = []
    for e in reg.entries(kind):
        what = f"preset of {e.family}" if e.is_preset else ("family" + (f" ({e.name}:{e.target.upper()})" if e.target else ""))
        summary = e.summary
        if e.is_preset and e.args:
            summary = f"{summary} [{', '.join(f'{k}={v}' for k, v in e.args.items())}]".strip()
        rows.append([e.name, what, e.origin, summary])
    print(tabulate(rows, headers=["name", "kind", "origin", "summary"], tablefmt="simple"))
    return 0


# -- run --------------------------------------------------------------------------------------
RUN_KEYS = {"tasks", "rm", "strategy", "budget", "policy", "limit", "seed", "output", "temperature", "top_p",
            "max_tokens", "budget_unit", "task_args", "rm_args", "strategy_args", "policy_args", "data_file", "include_path",
            "concurrency", "executor", "ray_address", "ray_workers", "ray_gpus_per_worker", "ray_unit_size",
            "ray_max_attempts"}


BUILTIN_CONFIGS = Path(__file__).parent / "configs"
"""Named run configurations shipped with prmbench (`--config paper_protocol`)."""


def _load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    builtin = BUILTIN_CONFIGS / f"{path}.yaml"
    if not Path(path).exists() and builtin.is_file():
        path = str(builtin)
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read --config {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must be a mapping of flag names to values (e.g. `tasks: math500`)")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - RUN_KEYS)
    if unknown:
        from prmbench.errors import did_you_mean

        raise ConfigError(f"--config {path}: unknown key(s) {', '.join(unknown)}.{did_you_mean(unknown[0], RUN_KEYS)} "
                          f"Allowed: {', '.join(sorted(RUN_KEYS))}")
    return data


def build_spec(args: argparse.Namespace) -> tuple[Any, Path]:
    """Merge --config YAML with flags (flags win) into a validated RunSpec and output folder."""
    spec, out, _ = build_run(args)
    return spec, out


def build_run(args: argparse.Namespace) -> tuple[Any, Path, int | None]:
    """Like `build_spec`, plus `--concurrency` (None: the policy's default); concurrency is not
    part of the spec, since records are the same at any concurrency (a run may resume at another)."""
    from prmbench.config import RunConfig, data_files

    cfg = _load_config(args.config)

    def pick(name: str, default: Any = None) -> Any:
        v = getattr(args, name, None)
        return v if v is not None else cfg.get(name, default)

    options = {key: pick(key) for key in RUN_KEYS}
    options["data_file"] = {**data_files(cfg.get("data_file")), **data_files(args.data_file)}
    options["include_path"] = list(cfg.get("include_path") or []) + list(args.include_path or [])
    spec = RunConfig.from_options(options)
    out = pick("output") or f"runs/run-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    concurrency = pick("concurrency")
    if concurrency is not None and (not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1):
        raise ConfigError(f"--concurrency must be a positive integer, e.g. --concurrency 16 (got {concurrency!r})")
    return spec, Path(out), concurrency


def build_executor(args: argparse.Namespace) -> Any:
    """The ExecutorConfig of `--executor` and the `--ray-*` flags (or their --config keys; flags win)."""
    from prmbench.executors import executor_config

    return executor_config(args, _load_config(args.config))


def cmd_run(args: argparse.Namespace) -> int:
    """Run the matrix and print the leaderboard."""
    from prmbench.results import load_run
    from prmbench.runner import Runner

    spec, output, concurrency = build_run(args)
    executor = build_executor(args)
    registry = _registry(spec.include_paths)
    try:
        Runner(spec, registry, output, resume=args.resume, concurrency=concurrency, executor=executor).run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: every finished problem is kept in {output}; continue with the same command "
              f"plus --output {output} --resume", file=sys.stderr)
        return 130
    print(render_all([load_run(output)], "markdown"))
    print(f"\nresults: {output}")
    return 0


# -- evaluate-samples ---------------------------------------------------------------------------
def cmd_evaluate_samples(args: argparse.Namespace) -> int:
    """Grade saved completions with a task's grader."""
    from prmbench.evaluate import evaluate_samples

    reg = _registry(args.include_path)
    task_args = parse_args_string(args.task_args)
    if args.data_file:
        task_args["data_file"] = args.data_file
    task = reg.build("task", args.task, task_args)
    out_rows = list(evaluate_samples(task, args.samples))
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows)
    if args.output:
        _write_text(args.output, lines)
    else:
        sys.stdout.write(lines)
    n = len(out_rows)
    k = sum(r["correct"] for r in out_rows)
    print(f"graded {n} rows: {k} correct ({(k / n if n else 0):.1%})", file=sys.stderr)
    return 0


def _write_text(path: str, text: str) -> None:
    """Write an output file, creating its folder; an unwritable path is a ConfigError."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    except OSError as e:
        raise ConfigError(f"cannot write --output {path}: {e.strerror or e}; choose a writable path") from e


# -- score ------------------------------------------------------------------------------------
def cmd_score(args: argparse.Namespace) -> int:
    """Score saved solutions with one reward model; rows are written as they are scored."""
    import os

    from prmbench.scoring import score_samples

    reg = _registry(args.include_path)
    rm_args = parse_args_string(args.rm_args)
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1 (got {args.batch_size})")
        rm_args["batch_size"] = args.batch_size
    task = None
    if args.task:
        task_args = parse_args_string(args.task_args)
        if args.data_file:
            task_args["data_file"] = args.data_file
        task = reg.build("task", args.task, task_args)
    rm = reg.build("rm", args.rm, rm_args)
    out = sys.stdout
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            out = open(args.output, "w")
        except OSError as e:
            raise ConfigError(f"cannot write --output {args.output}: {e.strerror or e}; choose a writable path") from e
    n = cut = 0
    try:
        for chunk in score_samples(rm, args.samples, task=task):
            out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk))
            out.flush()
            if out is not sys.stdout:
                os.fsync(out.fileno())
            n += len(chunk)
            cut += sum(r["truncated"] for r in chunk)
    finally:
        if out is not sys.stdout:
            out.close()
        rm.close()
    note = f"; {cut} longer than the model reads (truncated: scores for the steps that fit)" if cut else ""
    print(f"scored {n} rows with {args.rm}{note}", file=sys.stderr)
    return 0


# -- leaderboard / compare ------------------------------------------------------------------
def render_all(runs: Sequence[Any], fmt: str, df: Any = None) -> str:
    """The search leaderboard, then the step-level tables (prmbench.step_report) when runs hold step cells."""
    from prmbench.leaderboard import leaderboard_table, render
    from prmbench.step_report import render_step_tables

    df = leaderboard_table(runs) if df is None else df
    step = render_step_tables(runs, fmt)
    if not step:
        return render(df, fmt)
    return step if df.empty else render(df, fmt).rstrip("\n") + "\n\n" + step


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Render a leaderboard over one or more runs, optionally with a plot."""
    from prmbench.leaderboard import leaderboard_table
    from prmbench.results import load_run

    runs = [load_run(p) for p in args.runs]
    if str(args.format).strip().lower() == "paper":
        from prmbench.paper_table import render_paper_table

        text = render_paper_table(runs, args.k)
        if args.output:
            _write_text(args.output, text + "\n")
        else:
            print(text)
        return 0
    df = leaderboard_table(runs)
    text = render_all(runs, args.format, df)
    if args.output:
        _write_text(args.output, text if text.endswith("\n") else text + "\n")
    else:
        print(text.rstrip("\n"))
    if args.plot:
        from prmbench.plot import plot_accuracy_vs_compute

        plot_accuracy_vs_compute(df, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write one self-contained HTML report over one or more runs."""
    from prmbench.report import write_report

    write_report(args.runs, args.output, args.title)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs: paired statistics (exit 1 on a significant regression beyond --max-drop),
    or with --exact record by record (exit 1 naming every changed record)."""
    from prmbench.results import load_run
    from prmbench.step_compare import compare_step_runs, has_step_cells, render_step_comparison

    if args.exact:
        if args.max_drop is not None or args.alpha is not None:
            raise ConfigError("--exact compares every record and takes no --max-drop or --alpha "
                              "(those are for the statistical comparison: drop --exact)")
        from prmbench.compare_exact import compare_exact, render_exact

        exact = compare_exact(load_run(args.base), load_run(args.new))
        print(render_exact(exact))
        return 0 if exact.identical else 1
    from prmbench.compare import compare_runs, render_comparison

    max_drop = 0.0 if args.max_drop is None else args.max_drop
    alpha = 0.05 if args.alpha is None else args.alpha
    if not 0 <= max_drop <= 1:
        raise ConfigError(f"--max-drop is an accuracy difference between 0 and 1 (got {max_drop})")
    base, new = load_run(args.base), load_run(args.new)
    reports, regressed = [], False
    searched = any(c.kind != "step" for c in base.cells) and any(c.kind != "step" for c in new.cells)
    stepped = has_step_cells(base) and has_step_cells(new)
    if searched or not stepped:  # search cells (or neither kind shared: compare_runs says so)
        cmp = compare_runs(base, new, max_drop=max_drop, alpha=alpha)
        reports.append(render_comparison(cmp))
        regressed = cmp.regressed
    if stepped:
        step = compare_step_runs(base, new, max_drop=max_drop, alpha=alpha)
        reports.append(render_step_comparison(step))
        regressed = regressed or step.regressed
    print("\n\n".join(reports))
    return 1 if regressed else 0


# -- train-prm / plot-training / similarity ------------------------------------------------------
def cmd_train_prm(args: argparse.Namespace) -> int:
    """Train a value-head PRM (prmbench.training.train_prm)."""
    from prmbench.training.train_prm import TrainConfig, train_prm

    values = {f: getattr(args, f) for f in TrainConfig.__dataclass_fields__ if getattr(args, f, None) is not None}
    values["eval_task_args"] = parse_args_string(args.eval_task_args)
    try:
        train_prm(TrainConfig(**values))
    except KeyboardInterrupt:
        print(f"\ninterrupted: continue from the last checkpoint with the same command plus --resume "
              f"(checkpoints every --save-every steps in {args.output})", file=sys.stderr)
        return 130
    return 0


def cmd_plot_training(args: argparse.Namespace) -> int:
    """Accuracy against training steps and FLOPs for train-prm output folders."""
    from prmbench.training.plot_training import plot_training, points, points_table

    metric, pts = points(args.dirs, args.metric)
    print(points_table(metric, pts))
    for path in plot_training(args.dirs, args.output, metric):
        print(f"plot: {path}", file=sys.stderr)
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    """Gradient-based pattern similarity S of two response sets (prmbench.similarity)."""
    from prmbench.similarity import activation_similarity, load_reference_model, load_texts

    texts_a, texts_b = load_texts(args.a), load_texts(args.b)
    model, tok = load_reference_model(args.model, device=args.device, dtype=args.dtype)
    done = [0]
    total = len(texts_a) + len(texts_b)

    def progress(n: int) -> None:
        done[0] += n
        print(f"similarity: {done[0]}/{total} texts", file=sys.stderr, flush=True)

    result = activation_similarity(model, tok, texts_a, texts_b, layers=args.layers, batch_size=args.batch_size,
                                   max_length=args.max_length, memory_mb=args.memory_mb, progress=progress)
    data = {**result.to_json(), "model": args.model, "a": args.a, "b": args.b}
    text = json.dumps(data, indent=2) + "\n"
    if args.output:
        _write_text(args.output, text)
    sys.stdout.write(text)
    return 0


# -- parser -----------------------------------------------------------------------------------
def _add_include(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include-path", action="append", metavar="DIR",
                   help="folder of your own YAML presets (repeatable)")


EPILOG_TRAIN = """examples:
  # a tiny random backbone on ProcessBench GSM8K, 80 steps on the CPU
  python -m prmbench.testing tiny-model /tmp/tiny
  prmbench train-prm --backbone /tmp/tiny --data processbench:../shared/data/processbench/gsm8k.json \\
      --max-steps 80 --output runs/prm-tiny
  prmbench score --rm value_head_prm:runs/prm-tiny --samples ../shared/data/processbench/gsm8k.json
  # a real backbone, a mixture, bf16 + gradient checkpointing, evaluated every 200 steps
  prmbench train-prm --backbone Qwen/Qwen2.5-Math-1.5B --data prm800k:phase2_train.jsonl,math_shepherd:shepherd.jsonl \\
      --gradient-checkpointing --eval-task processbench_gsm8k --eval-every 200 --output runs/prm-1.5b
  # several GPUs (DDP), or FSDP; LoRA needs the lora extra (pip install 'prmbench[lora]')
  accelerate launch -m prmbench train-prm ... --output runs/prm-7b --fsdp "full_shard auto_wrap"
  prmbench train-prm ... --lora --lora-r 16
  # continue an interrupted run from its newest checkpoint (same flags; --max-steps may grow)
  prmbench train-prm ... --output runs/prm-1.5b --resume
Data formats: prm800k, math_shepherd, processbench, prmbench, prmbench_soft (Monte Carlo values as soft labels).
"""


def _add_training_parsers(sub: Any, fmt: Any) -> None:
    """Subcommands of the PRM lifecycle's training and analysis stage."""
    p = sub.add_parser("train-prm", help="train a value-head PRM on step labels (transformers Trainer)",
                       epilog=EPILOG_TRAIN, formatter_class=fmt)
    p.add_argument("--backbone", required=True, metavar="ID_OR_DIR", help="Hub id or local model folder")
    p.add_argument("--data", required=True, metavar="FMT:PATH[,..]", help="label sources (formats below)")
    p.add_argument("--output", required=True, metavar="DIR", help="checkpoint, logs and Trainer checkpoints")
    p.add_argument("--max-steps", type=int, dest="max_steps", metavar="N", help="optimizer steps (default 1000)")
    p.add_argument("--learning-rate", type=float, dest="learning_rate", metavar="LR",
                   help="backbone learning rate (default 2e-5)")
    p.add_argument("--head-learning-rate", type=float, dest="head_learning_rate", metavar="LR",
                   help="value-head learning rate (default 1e-3; the head starts from random)")
    p.add_argument("--batch-size", type=int, dest="batch_size", metavar="B", help="solutions per device and step (default 8)")
    p.add_argument("--grad-accum", type=int, dest="grad_accum", metavar="K", help="gradient accumulation steps (default 1)")
    p.add_argument("--warmup-steps", type=int, dest="warmup_steps", metavar="N", help="linear warm-up (default 0)")
    p.add_argument("--weight-decay", type=float, dest="weight_decay", metavar="W", help="AdamW weight decay (default 0)")
    p.add_argument("--lr-scheduler", dest="lr_scheduler", metavar="NAME", help="transformers scheduler name (default cosine)")
    p.add_argument("--max-length", type=int, dest="max_length", metavar="T", help="tokens read per solution (default 2048)")
    p.add_argument("--step-token", dest="step_token", metavar="TEXT", help="token appended after each step (default newline)")
    p.add_argument("--seed", type=int, help="seed of the head init and data order (default 0)")
    p.add_argument("--precision", help="auto (bf16 on a CUDA GPU that has it, else fp32) | bf16 | fp32")
    p.add_argument("--device", help="auto | cpu | cuda (default auto)")
    p.add_argument("--gradient-checkpointing", action="store_true", dest="gradient_checkpointing", default=None,
                   help="recompute activations in the backward pass (less memory)")
    p.add_argument("--lora", action="store_true", default=None, help="train LoRA adapters + the head (needs peft)")
    p.add_argument("--lora-r", type=int, dest="lora_r", metavar="R", help="LoRA rank (default 16)")
    p.add_argument("--lora-alpha", type=int, dest="lora_alpha", metavar="A", help="LoRA alpha (default 32)")
    p.add_argument("--fsdp", metavar="OPTS", help='FSDP options passed to the Trainer, e.g. "full_shard auto_wrap"')
    p.add_argument("--save-every", type=int, dest="save_every", metavar="N", help="Trainer checkpoint interval (default 200)")
    p.add_argument("--log-every", type=int, dest="log_every", metavar="N", help="training_log.jsonl interval (default 10)")
    p.add_argument("--eval-task", dest="eval_task", metavar="TASK", help="step-level task evaluated while training")
    p.add_argument("--eval-every", type=int, dest="eval_every", metavar="N", help="evaluation interval (default 100)")
    p.add_argument("--eval-limit", type=int, dest="eval_limit", metavar="K", help="only the first K items of --eval-task")
    p.add_argument("--eval-task-args", dest="eval_task_args", metavar="K=V[,K=V]", help="arguments of --eval-task")
    p.add_argument("--pretrain-tokens", type=float, dest="pretrain_tokens", metavar="D",
                   help="backbone pre-training tokens (default: the table of known families; 0 for random init)")
    p.add_argument("--resume", action="store_true", default=None, help="continue the run in --output from its newest checkpoint")
    p.set_defaults(func=cmd_train_prm)

    p = sub.add_parser("plot-training", help="PRM accuracy against training steps and against total FLOPs",
                       formatter_class=fmt,
                       epilog="examples:\n"
                              "  prmbench plot-training runs/prm-0.5b runs/prm-1.5b runs/prm-7b --output plots/prm\n"
                              "  prmbench plot-training runs/prm-1.5b --metric auroc --output plots/auroc\n"
                              "writes PREFIX_steps.png and PREFIX_flops.png (pre-training + RM training FLOPs) and\n"
                              "prints the plotted points; the runs need --eval-task evaluations in their logs")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="train-prm --output folders")
    p.add_argument("--output", default="training", metavar="PREFIX", help="file prefix (default: training)")
    p.add_argument("--metric", help="evaluation metric (default: the first of f1, auroc, accuracy, prmscore)")
    p.set_defaults(func=cmd_plot_training)

    p = sub.add_parser("similarity", help="gradient-based pattern similarity S of two response sets",
                       formatter_class=fmt,
                       epilog="examples:\n"
                              "  prmbench similarity --model Qwen/Qwen2.5-Coder-32B-Instruct --a math.jsonl --b code.jsonl\n"
                              "  prmbench similarity --model /models/ref --a runs/r:CELL_A --b runs/r:CELL_B --output s.json\n"
                              "inputs: JSONL rows {\"text\": ...}, or RUN_DIR:CELL_ID (the solutions that cell chose);\n"
                              "S = mean over cross pairs of the sum over layers (default L//2..L-1) of the cosine of\n"
                              "|W * dF/dW| over each layer's 2-D weights, F = the largest logit at the last position")
    p.add_argument("--model", required=True, metavar="ID_OR_DIR", help="reference causal LM")
    p.add_argument("--a", required=True, metavar="FILE|RUN:CELL", help="first response set")
    p.add_argument("--b", required=True, metavar="FILE|RUN:CELL", help="second response set")
    p.add_argument("--output", metavar="OUT.json", help="also write the result here")
    p.add_argument("--layers", metavar="A:B|i,j", help="layer indices (default: L//2 to the last)")
    p.add_argument("--batch-size", type=int, default=8, dest="batch_size", metavar="B", help="texts per backward pass (default 8)")
    p.add_argument("--max-length", type=int, default=2048, dest="max_length", metavar="T",
                   help="tokens read per text (longer ones keep their first T; default 2048)")
    p.add_argument("--memory-mb", type=float, default=2048, dest="memory_mb", metavar="MB",
                   help="cap on one pass's captured activations; above it the layers are split into passes (default 2048)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="model weights (default float32)")
    p.set_defaults(func=cmd_similarity)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="prmbench", description="Benchmark process reward models in test-time search.",
                                     epilog=EPILOG_MAIN, formatter_class=fmt)
    from prmbench import __version__

    parser.add_argument("--version", action="version", version=f"prmbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ls", help="list tasks, reward models, strategies, policies or plugins", formatter_class=fmt,
                       epilog="examples:\n  prmbench ls rms\n  prmbench ls plugins\n  prmbench ls strategies --include-path my_presets/")
    p.add_argument("what", choices=[*LS_KINDS, "plugins"])
    _add_include(p)
    p.set_defaults(func=cmd_ls)

    from prmbench.config import RunConfig

    D = RunConfig.default  # the one source of run defaults
    p = sub.add_parser("run", help="cross-run tasks x reward models x strategies x budgets", epilog=EPILOG_RUN,
                       formatter_class=fmt)
    p.add_argument("--tasks", metavar="T[,T..]", help="task names (prmbench ls tasks)")
    p.add_argument("--rm", metavar="R[,R..]", help="reward models (prmbench ls rms)")
    p.add_argument("--strategy", metavar="S[,S..]", help="search strategies (prmbench ls strategies)")
    p.add_argument("--budget", metavar="N[,N..]", help="budgets: the compute of best-of-N (e.g. 1,4,16); "
                   "with --budget-unit tokens|flops|seconds, the cap (e.g. 2000 or 2e12)")
    p.add_argument("--budget-unit", dest="budget_unit", metavar="UNIT",
                   help="n (default: compute matched to best-of-N) | nominal (N samples / N // M beams / "
                        "N simulations, uncapped; spend still measured) | tokens | flops | seconds (explicit caps)")
    p.add_argument("--policy", metavar="SPEC", help="generation backend, e.g. hf:Qwen/Qwen2.5-Math-1.5B-Instruct, "
                   "hf:/local/model/dir, replay:FILE.jsonl.gz")
    p.add_argument("--limit", type=int, metavar="K", help="only the first K problems of each task")
    p.add_argument("--seed", type=int, help=f"run seed (default {D('seed')}): same seed, config and machine -> same records")
    p.add_argument("--temperature", type=float, help=f"sampling temperature (default {D('temperature')})")
    p.add_argument("--top-p", type=float, dest="top_p", help=f"nucleus sampling (default {D('top_p')})")
    p.add_argument("--max-tokens", type=int, dest="max_tokens", help=f"max generated tokens per sample (default {D('max_tokens')})")
    p.add_argument("--concurrency", type=int, metavar="K",
                   help="problems of a cell searched at once, their model calls batched together; records are "
                        "the same at any K (default: the policy's: 16 for hf and replay, 8 for openai, 64 for vllm/sglang, 1 for transformers-serve and others)")
    from prmbench.executors import add_executor_arguments

    add_executor_arguments(p)
    p.add_argument("--output", metavar="DIR", help="run directory (default runs/run-DATE-TIME)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --output: same flags, data, "
                   "models/replay file and prmbench version, else exit 2 naming what differs")
    p.add_argument("--config", metavar="FILE.yaml", help="flags as YAML keys (flags given here win), or a built-in configuration: paper_protocol")
    p.add_argument("--data-file", action="append", metavar="TASK=PATH", help="local data file for a task (repeatable)")
    for kind in ("task", "rm", "strategy", "policy"):
        p.add_argument(f"--{kind}-args", dest=f"{kind}_args", metavar="[NAME:]K=V[,..]",
                       help=f"{kind} arguments: K=V goes to every {kind} of the run that takes K (one that none "
                            f"takes is an error), NAME:K=V to {kind} NAME only")
    _add_include(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("evaluate-samples", help="grade saved completions with a task's grader", formatter_class=fmt,
                       epilog="examples:\n  prmbench evaluate-samples --task math500 --samples gens.jsonl --output graded.jsonl\n"
                              "rows: {\"problem_id\" or \"task_id\": ID, \"completion\": TEXT}")
    p.add_argument("--task", required=True)
    p.add_argument("--samples", required=True, metavar="FILE.jsonl")
    p.add_argument("--output", metavar="FILE.jsonl", help="default: standard output")
    p.add_argument("--data-file", metavar="PATH", help="local data file for the task")
    p.add_argument("--task-args", metavar="K=V[,K=V]")
    _add_include(p)
    p.set_defaults(func=cmd_evaluate_samples)

    p = sub.add_parser("score", help="score saved solutions with a reward model (step scores + aggregate)",
                       formatter_class=fmt,
                       epilog="examples:\n"
                              "  prmbench score --rm math_prm --samples ../shared/data/processbench/gsm8k.json --output gsm8k_scores.jsonl\n"
                              "  prmbench score --rm qwen_prm:/models/prm --rm-args aggregation=prod,dtype=bf16 --samples rows.jsonl\n"
                              "  prmbench score --rm orm --task math500 --samples gens.jsonl --batch-size 8\n"
                              "rows: {\"problem\": Q, \"steps\": [...]} (ProcessBench) or {\"problem_id\": ID, \"completion\": TEXT} with --task;\n"
                              "output: each input row + step_scores, score (aggregate) and truncated")
    p.add_argument("--rm", required=True, metavar="R", help="reward model: a preset (math_prm) or FAMILY:CHECKPOINT")
    p.add_argument("--samples", required=True, metavar="FILE", help="JSONL, JSONL.gz or a JSON array of rows")
    p.add_argument("--output", metavar="FILE.jsonl", help="default: standard output (written as rows are scored)")
    p.add_argument("--batch-size", type=int, dest="batch_size", metavar="B", help="rows per forward pass (rm batch_size)")
    p.add_argument("--rm-args", metavar="K=V[,K=V]", help="reward-model arguments, e.g. aggregation=min,dtype=bf16,max_length=4096")
    p.add_argument("--task", help="task of rows with problem_id + completion (its problems and step split)")
    p.add_argument("--data-file", metavar="PATH", help="local data file for --task")
    p.add_argument("--task-args", metavar="K=V[,K=V]")
    _add_include(p)
    p.set_defaults(func=cmd_score)

    from prmbench.labels.cli import add_parsers as add_label_parsers

    add_label_parsers(sub, fmt)

    _add_training_parsers(sub, fmt)

    from prmbench.lab.cli import add_parsers as add_lab_parsers

    add_lab_parsers(sub, fmt)

    p = sub.add_parser("leaderboard", help="tables and plots over run directories", formatter_class=fmt,
                       epilog="examples:\n  prmbench leaderboard runs/a runs/b --format csv --output board.csv\n"
                              "  prmbench leaderboard runs/a --plot accuracy_vs_compute.png\n"
                              "  prmbench leaderboard runs/paper --format paper   # after run --config paper_protocol")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--format", default="markdown",
                   help="markdown | csv | html | paper (the paper's Table 1: generator x method by task; default markdown)")
    p.add_argument("--k", type=int, default=8, help="N of --format paper: prm@k, maj@k, pass@k (default 8)")
    p.add_argument("--output", metavar="FILE", help="write the table here instead of standard output")
    p.add_argument("--plot", metavar="FILE.png", help="also plot accuracy against measured compute")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("report", help="one self-contained HTML page: tables, figures, drill-down, search trees",
                       formatter_class=fmt,
                       epilog="examples:\n  prmbench report runs/a --output report.html\n"
                              "  prmbench report runs/a runs/b --output study.html --title 'PRM study'")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--output", required=True, metavar="FILE.html", help="the page to write")
    p.add_argument("--title", help="page title (default: the run names)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="regression check of NEW_RUN against BASE_RUN (paired statistics, or --exact)",
                       formatter_class=fmt,
                       epilog="examples:\n  prmbench compare runs/base runs/new --max-drop 0.05\n"
                              "  prmbench compare --exact results/baselines/ci/math_pool runs/ci/math_pool\n"
                              "Cells pair by task, policy, rm, strategy, budget unit and budget. Runs whose temperature,\n"
                              "top_p, max_tokens, seed, task version, data, task configuration or grader versions\n"
                              "differ are refused (exit 2). Exit status 1 when a cell's accuracy drops significantly\n"
                              "(McNemar, --alpha) and by more than --max-drop; with --exact (deterministic runs such as\n"
                              "the CI fixture) when any record's verdict or chosen answer differs, and exit 2 when\n"
                              "the runs' configurations or components differ at all.")
    p.add_argument("base", metavar="BASE_RUN")
    p.add_argument("new", metavar="NEW_RUN")
    p.add_argument("--max-drop", type=float, default=None, metavar="D", help="tolerated accuracy drop (default 0)")
    p.add_argument("--alpha", type=float, default=None, help="significance level (default 0.05)")
    p.add_argument("--exact", action="store_true",
                   help="require every record's verdict and chosen answer to be identical (deterministic runs)")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand; user errors print a message and exit 2 (no traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except PrmbenchError as e:
        print(f"prmbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
