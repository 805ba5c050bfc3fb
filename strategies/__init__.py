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
    register("weighted_majority", "prmbench.strategies.weighted_majority:WeightedMajority",
             summary="sample N full solutions, pick the answer with the largest sum of RM scores")
    register("beam_search", "prmbench.strategies.beam_search:BeamSearch",
             summary="step-level beam search: B beams x M next steps per round, PRM-ranked")
    register("mcts", "prmbench.strategies.mcts:MCTS",
             summary="UCT tree search over partial solutions with PRM leaf values")
    register("dvts", "prmbench.strategies.dvts:DVTS",
             summary="diverse verifier tree search: independent greedy PRM-guided subtrees")


@hookimpl
def register_preset_dirs(register):  # type: ignore[no-untyped-def]
    """Presets of built-in strategies."""
    register(Path(__file__).parent / "presets")
