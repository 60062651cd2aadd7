"""Random UUID4 strings for task-run ids, cheaply.

``str(uuid.uuid4())`` reads the OS random source once per id (a system call that also lets
other threads take the GIL) and builds a ``UUID`` object; a flow with many tasks makes one id
per task run. Here the OS random bytes are read 256 ids at a time and formatted directly: the
same kind of id (RFC 4122 version 4, from ``os.urandom``), with one system call per 256. A
forked child never reuses its parent's unread ids.
"""

from __future__ import annotations

import os

from ..orchestrator.pid import current_pid

_PER_READ = 256
_VARIANT = "89ab89ab89ab89ab"  # the RFC 4122 variant nibble (10xx) for each random nibble

_pool: list[str] = []
_pid = current_pid()


def _refill() -> None:
    global _pid
    _pid = current_pid()
    raw = os.urandom(16 * _PER_READ).hex()
    _pool[:] = [
        f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:32]}"
        for h in (raw[i:i + 32] for i in range(0, len(raw), 32))
    ]


def new_id() -> str:
    """A random version-4 UUID as its canonical 36-character string."""
    # list.pop is atomic under the GIL, so threads never get the same id; two threads that
    # find the pool empty at once both refill it, which only wastes random bytes.
    if _pid == current_pid():
        try:
            return _pool.pop()
        except IndexError:
            pass
    _refill()
    return _pool.pop()
