"""The checks every generation backend applies to a GenRequest before it runs it."""

from __future__ import annotations

import math

from prmbench.errors import ConfigError
from prmbench.types import GenRequest


def validate_request(req: GenRequest, backend: str) -> None:
    """Raise ConfigError naming `backend` when `req` asks for something no backend can honour."""
    if req.n < 0:
        raise ConfigError(f"{backend} policy: n must be >= 0 (got {req.n})")
    if req.max_tokens < 1:
        raise ConfigError(f"{backend} policy: max_tokens must be >= 1 (got {req.max_tokens})")
    if req.temperature < 0 or not math.isfinite(req.temperature):
        raise ConfigError(f"{backend} policy: temperature must be >= 0 (got {req.temperature})")
    if not 0 < req.top_p <= 1:
        raise ConfigError(f"{backend} policy: top_p must be in (0, 1] (got {req.top_p})")
    if any(not s for s in req.stop):
        raise ConfigError(f"{backend} policy: stop strings must not be empty")
