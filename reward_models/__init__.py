"""Built-in reward models (a default plugin)."""

from prmbench import hookimpl


@hookimpl
def register_reward_models(register):  # type: ignore[no-untyped-def]
    """Register the reference reward models."""
    register("oracle", "prmbench.reward_models.oracle:OracleRM",
             summary="the task's own grader as a reward (an upper bound; uses hidden answers)")
    register("random", "prmbench.reward_models.random_rm:RandomRM",
             summary="seeded uniform random scores (a lower bound)")
    register("exec_public", "prmbench.reward_models.exec_public:ExecPublicRM",
             summary="share of the problem's public examples the program passes (code tasks; sandboxed)")

