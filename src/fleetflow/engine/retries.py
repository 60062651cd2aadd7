"""Retry delays: a number, a list (one per retry), or exponential backoff with jitter."""

from __future__ import annotations

import random
from typing import Callable, Sequence, Union

RetryDelay = Union[float, Sequence[float], Callable[[int], float], None]


def exponential_backoff(backoff_factor: float, max_delay: float = 600.0) -> Callable[[int], float]:
    """Delay for retry *n* (1-based) = factor * 2**(n-1), capped; pair with ``retry_jitter_factor``."""

    def delay(attempt: int) -> float:
        return min(max_delay, backoff_factor * 2 ** (attempt - 1))

    delay.__name__ = f"exponential_backoff({backoff_factor})"
    return delay


def retry_delay(spec: RetryDelay, retry_number: int, jitter_factor: float | None = None) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based)."""
    if spec is None:
        base = 0.0
    elif callable(spec):
        base = float(spec(retry_number))
    elif isinstance(spec, (int, float)):
        base = float(spec)
    else:
        delays = list(spec)
        base = float(delays[min(retry_number, len(delays)) - 1]) if delays else 0.0
    if jitter_factor:
        base = max(0.0, base + random.uniform(-1, 1) * jitter_factor * base)
    return base
