"""Helpers for plugin authors and prmbench's own tests.

Nothing here is needed to run benchmarks. The helpers let you exercise a backend or a pipeline
offline and in seconds:

- `build_tiny_model(out_dir, ...)` (also `python -m prmbench.testing tiny-model DIR`) writes a
  tiny, randomly initialised causal language model of a real architecture (Qwen2 by default)
  with a tokenizer and chat template. The folder loads with `--policy hf:DIR`.
- `prmbench.testing.pools.build_math500_pool(...)` (also `python -m prmbench.testing math-pool
  OUT`) writes a deterministic MATH-500 replay pool of real solutions for `--policy replay:OUT`.
- `prmbench.testing.synthetic` is an instant environment with known per-step correctness (task
  `synthetic`, policy `synthetic`, reward model `synthetic_prm`), registered as a plugin through
  the `prmbench` entry point, for testing search strategies and budgets.
"""

from prmbench.testing.tiny_model import ARCHS, build_tiny_model

__all__ = ["ARCHS", "build_tiny_model"]
