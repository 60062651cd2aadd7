"""The current process id, without a system call.

``os.getpid()`` is a system call on every use (glibc stopped caching it), and the engine
checks "am I still the process that started this?" several times per task run (group-commit
buffer, log shipper, id pool) to behave right after a fork. This module keeps the id in a
variable that a fork handler refreshes in the child. It sits in the store's room (the lowest
that needs it, for group commit) and imports nothing, so the engine uses it too.
"""

from __future__ import annotations

import os

_pid = [os.getpid()]


def _forked() -> None:
    _pid[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """``os.getpid()``, kept current across ``os.fork`` (and multiprocessing's fork)."""
    return _pid[0]
