"""The ``usage`` record of a flow run: what it used, what it asked for, and where each number
came from (so a reader can tell a cgroup peak from a sampled one)."""

from __future__ import annotations

from pydantic import BaseModel, Field

USAGE_VERSION = 1


class Measured(BaseModel):
    """One number and how it was obtained."""

    value: float = Field(description="The number, in the unit its field names.")
    source: str = Field(description="Where it came from, e.g. 'cgroup v2 memory.peak' or 'getrusage ru_maxrss'.")


class Platform(BaseModel):
    """What the run ran on, as far as pricing cares."""

    kind: str | None = Field(default=None, description="'process', 'ecs' or 'in-process'.")
    launch_type: str | None = Field(default=None, description="ECS launch type: FARGATE, EC2 or 'capacity providers'.")
    region: str | None = Field(default=None, description="AWS region (from the task metadata or AWS_REGION).")
    arch: str | None = Field(default=None, description="CPU architecture: 'x86_64' or 'arm64'.")
    spot: bool = Field(default=False, description="Ran on Fargate Spot capacity.")


class RunUsage(BaseModel):
    """Stored once per flow run, written by its runner just before the final state."""

    version: int = Field(default=USAGE_VERSION, description="Record format version.")
    peak_memory_mib: Measured | None = Field(default=None, description="Peak memory of the run's process tree (MiB).")
    peak_address_space_mib: Measured | None = Field(
        default=None, description="Peak virtual memory of the runner (MiB): what a Process memory limit (RLIMIT_AS) applies to.")
    cpu_seconds: Measured | None = Field(default=None, description="CPU seconds (user + system) of the process tree.")
    avg_cpu: Measured | None = Field(default=None, description="Average CPU use in vCPUs (cpu seconds / wall seconds).")
    peak_cpu: Measured | None = Field(default=None, description="Highest CPU use over one sampling interval, in vCPUs.")
    wall_seconds: Measured = Field(description="Wall time the runner measured.")
    billed_seconds: Measured | None = Field(
        default=None, description="Time the platform bills for, before any minimum (ECS: from the image pull start).")
    requested_cpu: Measured | None = Field(default=None, description="Requested cpu units (1024 = 1 vCPU).")
    requested_memory_mib: Measured | None = Field(default=None, description="Requested memory (MiB).")
    samples: int = Field(default=0, description="How many samples the background thread took.")
    interval_seconds: float = Field(default=5.0, description="Sampling interval.")
    platform: Platform = Field(default_factory=Platform, description="What the run ran on.")
    warnings: list[str] = Field(default_factory=list, description="Fit warnings (OOM risk, over-sized).")

    def value(self, field: str) -> float | None:
        """The number of ``field`` (a :class:`Measured` field), or None when unknown."""
        measured = getattr(self, field)
        return None if measured is None else measured.value
