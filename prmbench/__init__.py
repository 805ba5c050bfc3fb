"""prmbench: a benchmark suite for process reward models in test-time scaling."""

from prmbench.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
