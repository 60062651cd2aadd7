"""Waiting for conditions, never for clocks.

Every wait in the suite goes through :func:`wait_until` (or its async twin). A wait has a
deadline only so a broken test ends; the deadline is generous and scales with one setting,
``FLEETFLOW_TEST_TIMEOUT_SCALE`` (default 1; CI on a loaded machine can raise it), and on
failure the error says what was last seen so the cause is readable from the log alone.

Tests never assert that something happened *quickly*: speed is measured in ``benchmarks/``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
_POLL = 0.05


def timeout_scale() -> float:
    """The multiplier applied to every deadline (``FLEETFLOW_TEST_TIMEOUT_SCALE``, default 1)."""
    try:
        return max(1.0, float(os.environ.get("FLEETFLOW_TEST_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def scaled(seconds: float) -> float:
    """``seconds`` times the suite's timeout scale: for deadlines handed to other APIs."""
    return seconds * timeout_scale()


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline; the message carries the last observation."""


def _describe(last: Any) -> str:
    text = repr(last)
    return text if len(text) <= 2000 else text[:2000] + "..."


def wait_until(
    predicate: Callable[[], T],
    what: str = "condition",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = _POLL,
    observe: Callable[[], Any] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy and return that value.

    ``observe`` (default: the predicate's own last value) is what the failure message shows.
    Exceptions from the predicate propagate: a condition that cannot be evaluated is a bug.
    """
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            seen = observe() if observe is not None else value
            raise WaitTimeout(f"timed out after {scaled(timeout):.0f}s waiting for {what}; last seen: {_describe(seen)}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], Awaitable[T] | T],
    what: str = "condition",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = _POLL,
    observe: Callable[[], Any] | None = None,
) -> T:
    """:func:`wait_until` for async tests: ``predicate`` may be sync or async."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value  # type: ignore[misc]
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            seen = observe() if observe is not None else value
            raise WaitTimeout(f"timed out after {scaled(timeout):.0f}s waiting for {what}; last seen: {_describe(seen)}")
        await asyncio.sleep(interval)
