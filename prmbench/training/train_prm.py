"""`prmbench train-prm`: train a value-head PRM on labelled steps with the transformers Trainer.

    prmbench train-prm --backbone ID_OR_DIR --data FMT:PATH[,FMT:PATH...] --output DIR

What it builds: the backbone's base transformer (its LM head dropped) plus a scalar head
Linear(h, h) -> ReLU -> Linear(h, 1) (prmbench.training.model), trained with binary
cross-entropy at every labelled step tag (soft labels allowed). The training loop is
transformers' Trainer (accelerate underneath), so bf16, gradient checkpointing and multi-GPU
DDP / FSDP work as they do there: launch with `accelerate launch -m prmbench train-prm ...` or
`torchrun -m prmbench train-prm ...` for several GPUs, `--fsdp "full_shard auto_wrap"` for FSDP.
`--lora` trains LoRA adapters (peft, the `lora` extra) plus the full head and merges the adapters
into the backbone when saving.

The output folder DIR holds, when done:

- the checkpoint in prmbench's value-head layout (reward_models/value_head_prm.py): loads as
  `--rm value_head_prm:DIR` in `prmbench run` and `prmbench score`;
- `checkpoint-N/` Trainer checkpoints (weights, optimizer, scheduler, RNG, trainer_state.json)
  every `--save-every` steps; `--resume` continues from the newest one, the data order included;
- `training_log.jsonl`: one row per `--log-every` steps (`step`, `loss` = mean over those steps,
  `learning_rate`, `grad_norm`, `train_tokens`, `train_flops`) and, with `--eval-task`, one row per
  evaluation (`step`, `train_tokens`, `train_flops`, `eval` = the task's metrics);
- `prmbench_training.json`: backbone, `num_parameters`, `trainable_parameters`, `train_tokens`,
  `train_flops` (= 6 x num_parameters x train_tokens), pre-training tokens/FLOPs (flops.py), the
  data mixture (per source: file sha256, solutions used, labelled steps, positive share), the
  hyper-parameters and `status` (running | complete). It is written at the start and updated at
  every save, so an interrupted run still says how far it got.

`train_tokens` are the non-padding tokens the model read in training, summed over devices
(Trainer's `num_input_tokens_seen`), restored with a checkpoint on resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from prmbench.errors import ConfigError, ModelLoadError
from prmbench.results import write_json_atomic
from prmbench.training.config import TrainConfig
from prmbench.training.flops import pretrain_info, training_flops
from prmbench.training.live_eval import SHOWN_METRICS, live_reward_model, step_eval_function
from prmbench.training.run_files import (LOG_FILE, RECORD_FILE, RECORD_VERSION, append_log, is_main_process, log,
                                         prepare_output)

__all__ = ["TrainConfig", "train_prm"]


def resolve_backbone(spec: str) -> Path:
    """A local model folder, or a Hub id resolved to its cached snapshot; ModelLoadError naming the fix."""
    from prmbench.policies.hf import _is_pathlike

    if _is_pathlike(spec):
        path = Path(spec).expanduser()
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"--backbone {spec}: not a model folder (no config.json); pass a save_pretrained "
                                 f"folder or a Hub id (a test backbone: python -m prmbench.testing tiny-model DIR)")
        return path.resolve()
    from prmbench.reward_models.checkpoint import resolve_checkpoint

    try:
        return resolve_checkpoint(spec, "value_head_prm")[0]
    except ModelLoadError as e:
        raise ModelLoadError(f"--backbone {spec}: {str(e).split(': ', 1)[-1].split('. Either')[0]}; download it "
                             f"(`hf download {spec}`) and pass the folder, or unset HF_HUB_OFFLINE") from None


def _pad_id(tokenizer: Any) -> int:
    for v in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if v is not None:
            return int(v)
    return 0


# -- the Trainer ----------------------------------------------------------------------------------
def _trainer_classes() -> tuple[type, type]:
    from transformers import Trainer, TrainerCallback

    class PRMTrainer(Trainer):
        """Trainer with a separate learning rate for the freshly initialised value head.

        Parameter groups as Trainer makes them (no weight decay on biases and norms), split into
        backbone (--learning-rate) and head (--head-learning-rate).
        """

        head_learning_rate: float = 1e-3

        def create_optimizer(self, model: Any = None) -> Any:
            opt_model = self.model if model is None else model
            if self.optimizer is None:
                decay = set(self.get_decay_parameter_names(opt_model))
                groups: dict[tuple[bool, bool], list[Any]] = {}
                for n, p in opt_model.named_parameters():
                    if p.requires_grad:
                        groups.setdefault((n.startswith("head.") or ".head." in n, n in decay), []).append(p)
                cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
                self.optimizer = cls([{"params": params, "weight_decay": self.args.weight_decay if decayed else 0.0,
                                       **({"lr": self.head_learning_rate} if is_head else {})}
                                      for (is_head, decayed), params in sorted(groups.items())], **kwargs)
            return self.optimizer

    class LogCallback(TrainerCallback):
        """Writes training_log.jsonl rows, runs --eval-task and refreshes prmbench_training.json."""

        def __init__(self, out: Path, n_params: int, evaluate: Callable[[], dict[str, Any]] | None, eval_every: int,
                     refresh: Callable[[Any], None]):
            self.out, self.n_params, self.evaluate, self.eval_every = out, n_params, evaluate, eval_every
            self.refresh = refresh

        def _counts(self, state: Any) -> dict[str, Any]:
            tokens = int(state.num_input_tokens_seen)
            return {"step": int(state.global_step), "train_tokens": tokens,
                    "train_flops": training_flops(self.n_params, tokens)}

        def _eval(self, state: Any) -> None:
            if self.evaluate is None or not state.is_world_process_zero:
                return
            metrics = self.evaluate()
            append_log(self.out / LOG_FILE, {**self._counts(state), "eval": metrics})
            shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k in SHOWN_METRICS}
            log(f"step {state.global_step}: eval {', '.join(f'{k} {v:.4g}' for k, v in shown.items()) or 'done'}")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 0:
                self._eval(state)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            row = {**self._counts(state), "loss": float(logs["loss"])}
            for k in ("learning_rate", "grad_norm", "epoch"):
                if k in logs:
                    row[k] = float(logs[k])
            append_log(self.out / LOG_FILE, row)
            log(f"step {row['step']}/{state.max_steps}: loss {row['loss']:.4f}, {row['train_tokens']} tokens")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.evaluate is not None and state.global_step % self.eval_every == 0:
                self._eval(state)
                kw["model"].train()

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self.refresh(state)

    return PRMTrainer, LogCallback


def _training_arguments(cfg: TrainConfig) -> Any:
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible; use --device cpu")
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda and torch.cuda.is_bf16_supported())
    return TrainingArguments(
        output_dir=cfg.output, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay, lr_scheduler_type=cfg.lr_scheduler, logging_steps=cfg.log_every,
        logging_first_step=True, save_strategy="steps", save_steps=cfg.save_every,
        save_total_limit=cfg.save_total_limit, bf16=bf16, activation_checkpointing=cfg.gradient_checkpointing,
        fsdp=cfg.fsdp or "", seed=cfg.seed, data_seed=cfg.seed, report_to=[], remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0, use_cpu=not cuda,
        disable_tqdm=True,
    )


def _apply_lora(cfg: TrainConfig, backbone: Any) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError("--lora needs peft: pip install 'prmbench[lora]'") from None
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", bias="none")
    return get_peft_model(backbone, lora)


def train_prm(cfg: TrainConfig) -> Path:
    """Train (or, with cfg.resume, continue) a value-head PRM; returns the output folder (see module docstring)."""
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_callback import PrinterCallback

    from prmbench.reward_models.hf_rm import _quiet_transformers, count_parameters
    from prmbench.reward_models.value_head_prm import save_value_head_checkpoint, step_token_id
    from prmbench.training.data import Collator, ExampleDataset, build_training_data, parse_data_specs
    from prmbench.training.model import ValueHeadModel, load_training_backbone

    cfg.validate()
    specs = parse_data_specs(cfg.data)
    backbone_path = resolve_backbone(cfg.backbone)
    resume_from = prepare_output(cfg)
    out = Path(cfg.output)
    evaluate_fn = step_eval_function(cfg.eval_task, cfg.eval_task_args, cfg.eval_limit) if cfg.eval_task else None

    with _quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(backbone_path))
        except Exception as e:
            raise ModelLoadError(f"--backbone {cfg.backbone}: cannot load its tokenizer ({str(e).splitlines()[0]})") from None
    step_id = step_token_id(tokenizer, cfg.step_token, "train-prm")
    data = build_training_data(specs, tokenizer, step_id, cfg.max_length)
    log(f"{len(data.examples)} solutions, {sum(len(e.labels) for e in data.examples)} labelled steps from "
         f"{', '.join(s.spec for s in data.sources)}")

    torch.manual_seed(cfg.seed)
    backbone, head = load_training_backbone(backbone_path)
    backbone_params = count_parameters(backbone)
    names = [cfg.backbone, backbone_path.name, str(getattr(backbone.config, "_name_or_path", "") or "")]
    pretrain = pretrain_info(backbone_params, names, cfg.pretrain_tokens)
    if cfg.lora:
        backbone = _apply_lora(cfg, backbone)
    model = ValueHeadModel(backbone, head)
    n_params = backbone_params + count_parameters(head)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    record: dict[str, Any] = {
        "format": "prmbench-training", "format_version": RECORD_VERSION, "status": "running",
        "backbone": cfg.backbone, "backbone_path": str(backbone_path), "head": "mlp2",
        "step_token": cfg.step_token, "num_parameters": n_params, "backbone_parameters": backbone_params,
        "trainable_parameters": trainable, "steps": 0, "train_tokens": 0, "train_flops": 0.0,
        "flops_formula": "train_flops = 6 x num_parameters x train_tokens", **pretrain.to_json(),
        "data": [s.to_json() for s in data.sources], "config": cfg.to_json(),
    }

    def refresh(state: Any, status: str = "running") -> None:
        tokens = int(state.num_input_tokens_seen)
        record.update(status=status, steps=int(state.global_step), train_tokens=tokens,
                      train_flops=training_flops(n_params, tokens))
        if pretrain.flops is not None:
            record["total_flops"] = pretrain.flops + record["train_flops"]
        write_json_atomic(out / RECORD_FILE, record)

    if resume_from is None and is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / RECORD_FILE, record)
    PRMTrainer, LogCallback = _trainer_classes()
    evaluate = None
    if evaluate_fn is not None:
        device = "cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu"
        rm = live_reward_model(backbone_path, model, cfg.step_token, device)
        evaluate = lambda: evaluate_fn(rm)  # noqa: E731
    args = _training_arguments(cfg)
    trainer = PRMTrainer(model=model, args=args, train_dataset=ExampleDataset(data.examples),
                         data_collator=Collator(_pad_id(tokenizer)),
                         callbacks=[LogCallback(out, n_params, evaluate, cfg.eval_every, refresh)])
    trainer.head_learning_rate = cfg.head_learning_rate
    trainer.remove_callback(PrinterCallback)  # it prints log dicts on stdout; LogCallback reports on stderr
    with _quiet_transformers():
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        if trainer.is_world_process_zero():
            final = trainer.accelerator.unwrap_model(trainer.model)
            body = final.backbone.merge_and_unload() if cfg.lora else final.backbone
            save_value_head_checkpoint(out, body, tokenizer, final.head, step_token=cfg.step_token)
    if trainer.is_world_process_zero():
        refresh(trainer.state, status="complete")
        log(f"done: {trainer.state.global_step} steps, {record['train_tokens']} tokens, "
             f"{record['train_flops']:.3g} FLOPs; checkpoint --rm value_head_prm:{out}")
    return out
