"""The run loggers' console: each line reaches a terminal at once, and any other stream (a pipe
or a file: CI logs, a worker's run output, a container's log driver) in batches.

Why: a task run prints Prefect's three lines, and each ``write`` is a system call that also
hands the GIL to whichever thread is waiting for it (the group-commit flusher, the log shipper,
the task runner's threads). Measured at 1,000 tasks that was about a fifth of the engine's
whole cost per task run, more with ``.submit()``. On a pipe or a file nothing is lost by
batching: Python already block-buffers ``stdout`` there, so lines on the two streams were
never kept in order, and a reader of the file sees each line within
``FLEETFLOW_CONSOLE_FLUSH_INTERVAL`` (default 50 ms). Lines at WARNING and above, the end of
every flow run, ``print`` in a run, ``logging.shutdown`` and interpreter exit write what is
pending at once, so a failure's lines always come before the traceback Python prints.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from contextvars import ContextVar
from typing import Any

from ..orchestrator.pid import current_pid
from ..settings import get_settings

MAX_PENDING_LINES = 2000  # lines held before a write regardless of the interval

# True while the caller writes what is pending itself right after (:func:`.logs.flushed_here`):
# lines then wait without starting or waking a flusher thread.
CALLER_FLUSHES: ContextVar[bool] = ContextVar("fleetflow_caller_flushes", default=False)


class ConsoleHandler(logging.StreamHandler):
    """A ``StreamHandler`` whose lines wait up to the flush interval on a non-terminal stream."""

    def __init__(self, stream: Any = None):
        super().__init__(stream)
        # Appended to without the lock (deque.append is atomic): the task runner's threads
        # print at once, and a lock they all wait on costs more than the lines.
        self._pending: deque[str] = deque()
        self._tty: tuple[Any, bool] = (None, False)  # (the stream it was checked for, isatty)
        self._wake = threading.Event()
        self._thread_pid = 0
        _handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)
            return
        self.write(text, now=record.levelno >= logging.WARNING)

    def write(self, text: str, now: bool = False) -> None:
        """Print ``text`` (whole lines): at once on a terminal or when ``now``, else batched."""
        pending = self._pending
        pending.append(text)
        if now or self._terminal():
            self.flush()
        elif len(pending) >= MAX_PENDING_LINES:
            self.flush()
        elif not self._wake.is_set() and not CALLER_FLUSHES.get():
            self._schedule()

    def flush(self) -> None:
        """Write what is pending, then flush the stream (``logging.shutdown`` calls this)."""
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def setStream(self, stream: Any) -> Any:  # noqa: N802 - logging's name
        self.flush()  # lines made for the old stream go to it
        return super().setStream(stream)

    # ---- internals ------------------------------------------------------------------------------
    def _terminal(self) -> bool:
        stream = self.stream
        seen, tty = self._tty
        if seen is not stream:
            try:
                tty = bool(stream.isatty())
            except (AttributeError, ValueError, OSError):
                tty = False
            self._tty = (stream, tty)
        return tty

    def _write_pending(self) -> None:
        """(``lock`` held) The lines pending now, in one write; lines appended meanwhile wait
        for the next one."""
        pending = self._pending
        count = len(pending)
        if not count:
            return
        text = "".join([pending.popleft() for _ in range(count)])
        stream = self.stream
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken console must never break a run
            pass

    # ---- the flusher ----------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self._thread_pid != current_pid():  # first line, or first in a forked child
            with self.lock:  # type: ignore[union-attr]
                if self._thread_pid != current_pid():
                    self._thread_pid = current_pid()
                    threading.Thread(target=self._loop, name="fleetflow-console", daemon=True).start()
        self._wake.set()

    def _loop(self) -> None:
        pid = current_pid()
        while self._thread_pid == pid:
            self._wake.wait()
            self._wake.clear()
            # Lines that arrive during the wait join the same write.
            time.sleep(get_settings().console_flush_interval)
            self.flush()


_handlers: "weakref.WeakSet[ConsoleHandler]" = weakref.WeakSet()


def _flush_all() -> None:
    for handler in list(_handlers):
        handler.flush()


def _forget_parents_lines() -> None:
    """A forked child starts with nothing pending: its parent wrote (or will write) those lines."""
    for handler in list(_handlers):
        handler._pending.clear()


# The parent's lines are written before a fork, so they come before anything the child prints.
os.register_at_fork(before=_flush_all, after_in_child=_forget_parents_lines)
