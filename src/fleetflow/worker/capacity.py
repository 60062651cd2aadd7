"""How many runs a worker launches at once when nobody said (no ``--limit``, no pool limit).

For a Process pool the runs share this machine: at most one per CPU, and never more than
the memory they request fits in the machine's memory (40 queued runs used to mean 42
processes and 2.7 GB at once). Runs beyond it wait SCHEDULED, where another worker may take
them. Other infrastructure (ECS) runs elsewhere, so only a batch size applies.
"""

from __future__ import annotations

import os

REMOTE_BATCH = 10  # runs claimed per poll when they run elsewhere


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_memory_mib() -> int | None:
    """MemTotal, lowered by a cgroup v2 memory.max when the worker runs in a container."""
    total = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) // 1024
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            raw = fh.read().strip()
        if raw.isdigit():
            limit = int(raw) // (1024 * 1024)
            total = min(total, limit) if total else limit
    except OSError:
        pass
    return total


def process_capacity(*, cpus: int, memory_mib: int | None, busy: int, busy_memory_mib: int,
                     run_memory_mib: int | None) -> int:
    """Free slots (pure): ``cpus - busy``, and no more than the next runs' requested memory
    fits in what the busy runs leave of ``memory_mib``."""
    slots = cpus - busy
    if memory_mib and run_memory_mib:
        slots = min(slots, (memory_mib - busy_memory_mib) // run_memory_mib)
    return max(0, slots)
