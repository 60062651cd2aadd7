"""Timeouts for sync functions: run the call in a helper thread and stop waiting.

Python cannot kill a thread, so on timeout the run is marked FAILED and the caller moves on;
the abandoned call's eventual result is discarded. Async functions are cancelled properly
with ``asyncio.wait_for``.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Awaitable, Callable

from ..exceptions import RunTimeout


def call_with_timeout(fn: Callable[[], Any], timeout: float | None, what: str) -> Any:
    if timeout is None:
        return fn()
    ctx = contextvars.copy_context()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = ctx.run(fn)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"fleetflow-timeout-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RunTimeout(f"{what} exceeded timeout_seconds={timeout}")
    if "error" in box:
        raise box["error"]
    return box.get("value")


async def await_with_timeout(coro: Awaitable[Any], timeout: float | None, what: str) -> Any:
    if timeout is None:
        return await coro
    import asyncio

    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError:
        raise RunTimeout(f"{what} exceeded timeout_seconds={timeout}") from None
