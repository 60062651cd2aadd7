"""Samples of the run's process tree every ``interval`` seconds (a job on the process's ticker
thread, :mod:`fleetflow.ticker`), and once more at the end: CPU seconds, peak CPU over an
interval, and peak memory from the first available source (see :mod:`.sources`). Overhead: one
/proc scan per interval."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from ..ticker import Job, ticker
from . import sources as src
from .model import Measured


@dataclass
class Measurement:
    """What :meth:`Sampler.stop` returns (turned into a :class:`~.model.RunUsage` by the recorder)."""

    wall_seconds: float
    cpu_seconds: float
    peak_cpu: float
    peak_memory: Measured | None
    peak_address_space_mib: float | None
    samples: int
    interval: float
    cpu_source: str = "getrusage (self + reaped children) + /proc/<pid>/stat of live descendants"
    extra: dict = field(default_factory=dict)


class Sampler:
    """``start()`` then ``stop()``; thread-safe, and a failing source never stops the run."""

    def __init__(self, interval: float = 5.0, root: int | None = None, ecs_uri: str | None = None) -> None:
        self.interval = max(0.01, float(interval))
        self.root = root or os.getpid()
        self.ecs_uri = ecs_uri if ecs_uri is not None else src.ecs_metadata_uri()
        self.cgroup = src.own_cgroup_v2(self.root)
        self._lock = threading.Lock()
        self._job: Job | None = None
        self.samples = 0
        self.peak_cpu = 0.0
        self.peak_tree_rss = 0.0
        self.peak_ecs: tuple[float, str] | None = None

    def start(self) -> "Sampler":
        self.t0 = self._last_t = time.monotonic()
        self.cpu0 = self._last_cpu = src.tree_cpu_seconds(self.root)
        try:
            self._job = ticker.every(self.interval, self.sample, "usage sample")
        except (RuntimeError, MemoryError):
            # A tight address-space limit (Process memory) may not fit another thread's stack:
            # measure at the end only, rather than fail the run.
            self._job = None
        return self

    def sample(self) -> None:
        """One sample: CPU use since the last one, memory now."""
        try:
            now, cpu = time.monotonic(), src.tree_cpu_seconds(self.root)
            rss = src.tree_rss_mib(self.root)
            ecs = src.ecs_task_memory(self.ecs_uri) if self.ecs_uri else None
        except Exception:  # noqa: BLE001 - measuring must never break the run
            return
        with self._lock:
            if now > self._last_t:
                self.peak_cpu = max(self.peak_cpu, (cpu - self._last_cpu) / (now - self._last_t))
            self._last_t, self._last_cpu = now, cpu
            self.peak_tree_rss = max(self.peak_tree_rss, rss)
            if ecs and (self.peak_ecs is None or ecs[0] > self.peak_ecs[0]):
                self.peak_ecs = ecs
            self.samples += 1

    def stop(self) -> Measurement:
        """Stop sampling (waiting for a sample in progress), take the final one and return the
        measurement."""
        if self._job is not None:
            self._job.cancel()
        self.sample()
        wall = max(time.monotonic() - self.t0, 1e-9)
        cpu = max(self._last_cpu - self.cpu0, 0.0)
        return Measurement(wall_seconds=wall, cpu_seconds=cpu, peak_cpu=max(self.peak_cpu, cpu / wall),
                           peak_memory=self._peak_memory(), peak_address_space_mib=src.own_vm_peak_mib(),
                           samples=self.samples, interval=self.interval)

    def _peak_memory(self) -> Measured | None:
        every = f"every {self.interval:g} s"
        cgroup = src.cgroup_memory_peak_mib(self.cgroup)
        if cgroup is not None:
            return Measured(value=cgroup, source="cgroup v2 memory.peak")
        if self.peak_ecs is not None:
            value, stat = self.peak_ecs
            how = "max_usage" if stat == "max_usage" else f"memory_stats.usage sampled {every}"
            return Measured(value=value, source=f"ECS task metadata v4 /task/stats ({how})")
        rusage = src.rusage_peak_mib()
        value = max(rusage, self.peak_tree_rss)
        return Measured(value=value, source=f"getrusage ru_maxrss + /proc process-tree RSS sampled {every}")
