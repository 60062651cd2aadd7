"""Store calls from the worker's asyncio code, made off its event loop.

Over HTTP every store call is a request (embedded, a transaction, which may wait on a lock):
made on the loop, it would stall watching launches, long-poll claims and lease renewals for
its whole duration. Every call site in :mod:`.loop` and :mod:`.sweep` goes through
:func:`off_loop` instead, one worker thread per call (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable


async def off_loop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a thread; the loop keeps running until it returns."""
    return await asyncio.to_thread(fn, *args, **kwargs)
