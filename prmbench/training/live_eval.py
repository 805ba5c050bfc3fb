"""`--eval-task` while training: the model being trained as a reward model, and the step-level task."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

#: Metrics echoed on stderr after an evaluation (all of them go to the log).
SHOWN_METRICS = ("f1", "auroc", "accuracy", "error_acc", "correct_acc", "prmscore")


def live_reward_model(backbone_path: Path, model: Any, step_token: str, device: str) -> Any:
    """A ValueHeadPRM that scores with the model being trained (same encoding, same head), no copy."""
    import torch

    from prmbench.reward_models.hf_rm import count_parameters
    from prmbench.reward_models.value_head_prm import ValueHeadPRM

    class LiveValueHeadPRM(ValueHeadPRM):
        """The in-training model behind prmbench's value-head reader."""

        def _load(self) -> tuple[Any, Callable[[Any], Any], int]:
            head = model.head

            def sigmoid_value(h: Any) -> Any:
                return torch.sigmoid(head(h.to(next(head.parameters()).dtype)).float()[:, 0])

            return model.backbone, sigmoid_value, count_parameters(model.backbone, head)

    return LiveValueHeadPRM(str(backbone_path), step_token=step_token, device=device, dtype="float32")


def step_eval_function(task: str, task_args: dict[str, Any], limit: int | None) -> Callable[[Any], dict[str, Any]]:
    """rm -> metrics of the step-level `task` (prmbench.step_eval.evaluate_step_task)."""
    from prmbench.plugins import build_registry
    from prmbench.step_eval import evaluate_step_task
    from prmbench.step_task import require_step_task

    # fail now, not after loading the data and the model: an unknown or non-step task, bad arguments
    require_step_task(build_registry().build("task", task, dict(task_args or {})), task)

    def run(rm: Any) -> dict[str, Any]:
        return dict(evaluate_step_task(task, rm, task_args=task_args or None, limit=limit))

    return run
