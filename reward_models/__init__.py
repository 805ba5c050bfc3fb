"""Built-in reward models (a default plugin)."""

from pathlib import Path

from prmbench import hookimpl


@hookimpl
def register_reward_models(register):  # type: ignore[no-untyped-def]
    """Register the reference reward models and the checkpoint families."""
    register("oracle", "prmbench.reward_models.oracle:OracleRM",
             summary="the task's own grader as a reward (an upper bound; uses hidden answers)")
    register("random", "prmbench.reward_models.random_rm:RandomRM",
             summary="seeded uniform random scores (a lower bound)")
    register("exec_public", "prmbench.reward_models.exec_public:ExecPublicRM",
             summary="share of the problem's public examples the program passes (code tasks; sandboxed)")
    register("qwen_prm", "prmbench.reward_models.qwen_prm:QwenPRM", target="checkpoint",
             summary="Qwen2.5-Math-PRM style: chat template, <extra_0> after each step, 2-class head")
    register("shepherd_prm", "prmbench.reward_models.shepherd_prm:ShepherdPRM", target="checkpoint",
             summary="Math-Shepherd style causal LM: P(+) over {+,-} at the 'ки' tag after each step")
    register("value_head_prm", "prmbench.reward_models.value_head_prm:ValueHeadPRM", target="checkpoint",
             summary="backbone + scalar value head, sigmoid at step-end tokens (Skywork-o1-Open-PRM, prmbench)")
    register("rlhflow_prm", "prmbench.reward_models.rlhflow_prm:RLHFlowPRM", target="checkpoint",
             summary="RLHFlow multi-turn: each step a user turn, P(+) over {+,-} at the assistant reply")
    register("orm", "prmbench.reward_models.orm:OutcomeRM", target="checkpoint",
             summary="outcome RM, scalar head at the last token, sigmoid-normalised; plain `orm` = "
                     "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2")


@hookimpl
def register_preset_dirs(register):  # type: ignore[no-untyped-def]
    """Presets for public checkpoints (math_prm, code_prm, orm, ...)."""
    register(Path(__file__).parent / "presets")
