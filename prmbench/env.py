"""Boolean switches read from the environment, in one place."""

from __future__ import annotations

import os

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str) -> bool:
    """Whether the environment variable `name` is set to 1/true/yes/on (any case)."""
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES
