"""Process identity on this host: a pid *and* its kernel start time.

A pid alone is not an identity: the kernel reuses pids, so a handle saved yesterday may name an
unrelated process today. Every handle of a local process carries the start time from
``/proc/<pid>/stat`` (field 22, clock ticks since boot), and nothing signals a pid whose start
time no longer matches. Pure standard library, so the engine, the worker and the CLI can all
use it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

HAS_PROC = os.path.exists("/proc/self/stat")


def start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (after the parenthesised command name), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class ProcessId:
    """``process:<host>:<pid>:<start time>``: the durable handle of a local process."""

    host: str
    pid: int
    start: str | None

    def __str__(self) -> str:
        return f"process:{self.host}:{self.pid}:{self.start or ''}"

    @classmethod
    def parse(cls, handle: str) -> "ProcessId":
        kind, host, pid, *rest = (handle.split(":") + [""])[:4]
        if kind != "process" or not pid.isdigit():
            raise ValueError(f"not a process handle: {handle!r}")
        return cls(host, int(pid), rest[0] or None)

    @classmethod
    def current(cls, pid: int | None = None) -> "ProcessId":
        pid = os.getpid() if pid is None else pid
        return cls(socket.gethostname(), pid, start_time(pid))

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """True only if this very process runs on this host (same pid and same start time).
        Without /proc (macOS) the start time cannot be checked and the pid is trusted."""
        if not self.local:
            return False
        if HAS_PROC:
            return self.start is not None and start_time(self.pid) == self.start
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def signal(self, sig: int, *, group: bool = True) -> bool:
        """Send ``sig`` (to its process group when it leads one) only if :meth:`alive`."""
        if not self.alive():
            return False
        try:
            if group and os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False


def find_by_environment(name: str, value: str) -> ProcessId | None:
    """A live process on this host whose initial environment has ``name=value`` (how a
    restarted worker finds a runner it started but never recorded), or None."""
    if not HAS_PROC:
        return None
    needle = f"{name}={value}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    return ProcessId.current(int(entry))
        except OSError:  # gone, or another user's process
            continue
    return None


__all__ = ["HAS_PROC", "ProcessId", "find_by_environment", "start_time"]
