"""Where usage numbers come from, first available wins for memory:

1. cgroup v2 ``memory.peak`` -- exact, kernel-kept, but only meaningful when the cgroup holds
   nothing but this run (a container); on a shared host it counts everyone's memory, so we use
   it only when every process in the cgroup is this runner, its descendants or its ancestors;
2. the ECS task metadata endpoint v4 ``${ECS_CONTAINER_METADATA_URI_V4}/task/stats`` (Docker
   stats per container: ``memory_stats.max_usage`` where the host has it, else ``usage``);
   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4-fargate.html
3. ``getrusage`` (``ru_maxrss``) and ``/proc`` sampling of the process tree.

Standard library only; every reader returns None instead of raising when its source is absent.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import urllib.request
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ---- /proc ----------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def descendants(root: int) -> list[int]:
    """Live descendants of ``root``: walked down through ``/proc/<pid>/task/<tid>/children``
    (a few small reads), or, where the kernel has no such files, one scan of every process's
    stat (which costs milliseconds on a busy host, several times per run); empty without /proc."""
    walked = _walk_children(root)
    return walked if walked is not None else scan_descendants(root)


def _children(pid: int) -> list[int] | None:
    """The children of every thread of ``pid``; [] when it is gone; None when the kernel
    keeps no children files."""
    folder = f"{PROC}/{pid}/task"  # plain strings: a run samples this several times, pathlib costs
    try:
        tasks = os.listdir(folder)
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"{folder}/{tid}/children") as fh:
                found.extend(int(c) for c in fh.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"{folder}/{tid}"):
                continue  # the thread ended between the listing and the read
            return None
        except (OSError, ValueError):
            continue
    return found


def _walk_children(root: int) -> list[int] | None:
    found: list[int] = []
    todo = _children(root)
    if todo is None:
        return None
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(_children(pid) or [])
    return found


def scan_descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    try:
        entries = [int(e) for e in os.listdir(PROC) if e.isdigit()]
    except OSError:
        return []
    for pid in entries:
        ppid = parent_pid(pid)
        if ppid is not None:
            children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def ancestors(pid: int) -> list[int]:
    found, current = [], parent_pid(pid)
    while current and current not in found:
        found.append(current)
        current = parent_pid(current)
    return found


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one live process (0 when it is gone)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else 0.0


def proc_rss_mib(pid: int) -> float:
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE / MIB
    except (OSError, IndexError, ValueError):
        return 0.0


def own_vm_peak_mib() -> float | None:
    """VmPeak of this process: the address space a Process memory limit (RLIMIT_AS) caps."""
    try:
        for line in (PROC / "self" / "status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---- getrusage ------------------------------------------------------------------------------
def _maxrss_mib(who: int) -> float:
    # Linux reports KiB, macOS bytes.
    raw = resource.getrusage(who).ru_maxrss
    return raw / MIB if sys.platform == "darwin" else raw / 1024


def rusage_peak_mib() -> float:
    """The larger of this process's and its largest reaped child's peak resident set."""
    return max(_maxrss_mib(resource.RUSAGE_SELF), _maxrss_mib(resource.RUSAGE_CHILDREN))


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds of this process, its reaped children and its live descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = sum(proc_cpu_seconds(pid) for pid in descendants(root or os.getpid()))
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + live


def tree_rss_mib(root: int | None = None) -> float:
    root = root or os.getpid()
    return sum(proc_rss_mib(pid) for pid in [root, *descendants(root)])


# ---- cgroup v2 ------------------------------------------------------------------------------
def own_cgroup_v2(root: int | None = None) -> Path | None:
    """This process's cgroup v2 folder when it has ``memory.peak`` and holds only this run
    (see the module docstring); None otherwise."""
    root = root or os.getpid()
    try:
        relative = unified_cgroup((PROC / str(root) / "cgroup").read_text())
    except OSError:
        return None
    if relative is None:
        return None
    folder = CGROUP_ROOT / relative
    try:
        members = {int(p) for p in (folder / "cgroup.procs").read_text().split()}
    except (OSError, ValueError):
        return None
    if not (folder / "memory.peak").exists() or not holds_only_this_run(members, root):
        return None
    return folder


def unified_cgroup(proc_cgroup: str) -> str | None:
    """The cgroup v2 path from /proc/<pid>/cgroup on a pure v2 host ('0::/path'); None on
    cgroup v1 or hybrid hosts, where memory is accounted in the v1 hierarchy."""
    lines = [line for line in proc_cgroup.splitlines() if line.strip()]
    if len(lines) != 1 or not lines[0].startswith("0::"):
        return None
    return lines[0][3:].lstrip("/")


def holds_only_this_run(members: set[int], root: int) -> bool:
    """True when every process in the cgroup is ``root``, one of its descendants, or one of its
    ancestors (a container's init and shell): then the cgroup's memory is this run's."""
    return members <= {root, *descendants(root), *ancestors(root)}


def cgroup_memory_peak_mib(folder: Path | None) -> float | None:
    if folder is None:
        return None
    try:
        return int((folder / "memory.peak").read_text().split()[0]) / MIB
    except (OSError, ValueError, IndexError):
        return None


# ---- ECS task metadata v4 -------------------------------------------------------------------
def ecs_metadata_uri() -> str | None:
    return os.environ.get("ECS_CONTAINER_METADATA_URI_V4") or None


def _get_json(url: str, timeout: float = 2.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - link-local endpoint
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def ecs_task_metadata(uri: str | None) -> dict[str, Any] | None:
    """``/task``: Limits, PullStartedAt, AvailabilityZone, LaunchType..."""
    found = _get_json(f"{uri}/task") if uri else None
    return found if isinstance(found, dict) else None


def ecs_task_memory(uri: str | None) -> tuple[float, str] | None:
    """Memory of the whole task from ``/task/stats``: (MiB, which statistic), or None."""
    return task_memory_from_stats(_get_json(f"{uri}/task/stats") if uri else None)


def task_memory_from_stats(stats: Any) -> tuple[float, str] | None:
    """Sum over the task's containers of ``memory_stats.max_usage`` (cgroup v1 hosts keep the
    peak), else of ``usage`` (cgroup v2 hosts report only the current value)."""
    if not isinstance(stats, dict) or not stats:
        return None
    peaks = [((s or {}).get("memory_stats") or {}) for s in stats.values()]
    if all("max_usage" in m for m in peaks):
        return sum(m["max_usage"] for m in peaks) / MIB, "max_usage"
    if all("usage" in m for m in peaks):
        return sum(m["usage"] for m in peaks) / MIB, "usage"
    return None
