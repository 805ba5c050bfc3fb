"""Built-in search strategies (a default plugin)."""

from pathlib import Path

from prmbench import hookimpl


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    """Register the built-in strategies."""
    register("best_of_n", "prmbench.strategies.best_of_n:BestOfN",
             summary="sample N full solutions, pick the highest aggregated reward")
    register("majority_vote", "prmbench.strategies.majority_vote:MajorityVote",
             summary="sample N full solutions, pick the most common final answer")


@hookimpl
def register_preset_dirs(register):  # type: ignore[no-untyped-def]
    """Presets of built-in strategies."""
    register(Path(__file__).parent / "presets")
