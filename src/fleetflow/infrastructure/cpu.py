"""Enforcing a Process run's ``cpu`` (ECS-style units, 1024 = 1 vCPU) instead of only recording it.

Preferred: a cgroup v2 child group with ``cpu.max`` (a real quota, fractions of a CPU work),
where the worker's own group is writable (delegated). Otherwise: CPU affinity to
``ceil(cpu / 1024)`` CPUs. The run's record says which was used (``cpu_enforcement``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def cpus_for(cpu_units: int, available: list[int]) -> list[int]:
    """The CPUs an affinity mask gives a run of ``cpu_units`` (pure): at least one."""
    wanted = max(1, math.ceil(cpu_units / 1024))
    return sorted(available)[: min(wanted, len(available))]


def cpu_max(cpu_units: int) -> str:
    """The ``cpu.max`` line for ``cpu_units`` (pure): quota and period in microseconds."""
    return f"{max(1000, cpu_units * PERIOD_US // 1024)} {PERIOD_US}"


def _own_cgroup_v2() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = [line.split("::", 1)[1] for line in lines if line.startswith("0::")]
    if not unified or not (CGROUP_ROOT / "cgroup.controllers").exists():
        return None  # cgroup v1 or none
    return CGROUP_ROOT / unified[0].lstrip("/")


def _try_cgroup(pid: int, cpu_units: int) -> str | None:
    base = _own_cgroup_v2()
    if base is None:
        return None
    group = base / f"fleetflow-run-{pid}"
    try:
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(cpu_max(cpu_units))
        (group / "cgroup.procs").write_text(str(pid))
    except OSError:
        try:
            group.rmdir()
        except OSError:
            pass
        return None
    return f"cgroup cpu.max {cpu_max(cpu_units)}"


def enforce_cpu(pid: int, cpu_units: int | None) -> str:
    """Limit process ``pid`` to ``cpu_units``; returns how (for the run's record)."""
    if not cpu_units:
        return "none (cpu not set)"
    how = _try_cgroup(pid, cpu_units)
    if how:
        return how
    try:
        cpus = cpus_for(cpu_units, sorted(os.sched_getaffinity(0)))
        os.sched_setaffinity(pid, cpus)
    except (AttributeError, OSError) as exc:
        return f"not enforced ({type(exc).__name__}: {exc})"
    return f"cpu affinity {','.join(map(str, cpus))}"
