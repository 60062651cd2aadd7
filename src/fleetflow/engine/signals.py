"""SIGTERM while a flow runs: raise into the flow so it is recorded, never left RUNNING."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class TerminationSignal(BaseException):
    """Raised in the main thread when the process receives SIGTERM during a flow run."""

    def __init__(self, signum: int):
        super().__init__(f"received signal {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, frame: object) -> None:
    raise TerminationSignal(signum)


@contextlib.contextmanager
def handle_termination() -> Iterator[None]:
    """Install the SIGTERM handler for the duration of a top-level flow run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
