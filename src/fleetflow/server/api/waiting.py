"""Long-polls: waiters park on a key (``run:<id>``, ``pool:<name>``) until a write through
this server touches it, re-checking the store every few seconds in case another process
wrote directly to the database."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any, Awaitable, Callable, TypeVar

from starlette.concurrency import run_in_threadpool

from ...orchestrator.request_tx import after_commit, checkpoint

T = TypeVar("T")
RECHECK_SECONDS = 2.0


class Notifier:
    """Wakes the waiters of a key; :meth:`notify` may be called from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, *keys: str) -> None:
        """Wake ``keys``' waiters -- once the current request's writes are committed, so what
        they re-read is there (see :mod:`fleetflow.orchestrator.request_tx`)."""
        after_commit(partial(self._notify_now, keys))

    def _notify_now(self, keys: tuple[str, ...]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake, keys)

    def _wake(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            for future in self._waiters.pop(key, ()):
                if not future.done():
                    future.set_result(None)

    def register(self, key: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(future)
        return future

    def discard(self, key: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(key, None)


async def poll_until(
    notifier: Notifier, key: str, check: Callable[[], T], done: Callable[[T], bool], timeout: float
) -> T:
    """Run the blocking ``check`` (in the thread pool) until ``done(result)`` or ``timeout``
    seconds pass, waking on ``key``'s notifications instead of polling the store busily."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        future = notifier.register(key)  # before checking, so no notification is missed
        try:
            result = await run_in_threadpool(_attempt, check, done)
            remaining = deadline - time.monotonic()
            if done(result) or remaining <= 0:
                return result
            await _wait(future, min(remaining, RECHECK_SECONDS))
        finally:
            notifier.discard(key, future)


def _attempt(check: Callable[[], T], done: Callable[[T], bool]) -> T:
    """One check; one that is not done is committed at once (a claim that found nothing), so
    the request holds no transaction while it waits (:func:`~fleetflow.orchestrator.request_tx.checkpoint`)."""
    result = check()
    if not done(result):
        checkpoint()
    return result


async def _wait(future: Awaitable[Any], seconds: float) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(future), seconds)
    except asyncio.TimeoutError:
        pass
