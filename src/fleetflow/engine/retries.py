"""Retry delays: a number, a list (one per retry), or exponential backoff with jitter."""

from __future__ import annotations

import random
from typing import Callable, Sequence, Union

RetryDelay = Union[float, Sequence[float], Callable[[int], float], None]


class exponential_backoff:  # noqa: N801 - Prefect's name
    """Delays for exponential backoff: ``exponential_backoff(10)(3) == [10, 20, 40]``.

    As in Prefect, a task given ``retry_delay_seconds=exponential_backoff(10)`` calls it with
    its number of retries to get one delay per retry; pair with ``retry_jitter_factor``.
    """

    def __init__(self, backoff_factor: float, max_delay: float = 600.0):
        self.backoff_factor = backoff_factor
        self.max_delay = max_delay
        self.__name__ = f"exponential_backoff({backoff_factor})"

    def delay(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1-based)."""
        return min(self.max_delay, self.backoff_factor * 2 ** (attempt - 1))

    def __call__(self, retries: int) -> list[float]:
        return [self.delay(n) for n in range(1, retries + 1)]

    def __repr__(self) -> str:
        return self.__name__


def retry_delay(spec: RetryDelay, retry_number: int, jitter_factor: float | None = None) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based)."""
    if spec is None:
        base = 0.0
    elif isinstance(spec, exponential_backoff):
        base = spec.delay(retry_number)
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
