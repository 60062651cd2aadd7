"""The runner's hook: measure while the flow runs, and just before its final state write the
``usage`` record, log the fit warnings and add them to the state message.

    recorder = UsageRecorder.start(client, flow_run_id)        # after the claim
    engine.before_final = recorder.finish                       # called with the final state

The record is written before the final state on purpose: a run token stops working once its
run is final. Nothing here may break a run: every failure is swallowed (and printed).
"""

from __future__ import annotations

import datetime as dt
import os
import platform as _platform
import re
import sys
from typing import TYPE_CHECKING, Any

from .fit import fit_warnings
from .model import Measured, Platform, RunUsage
from .sampler import Measurement, Sampler
from . import sources as src

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI
    from ..states import State


def _arch() -> str:
    machine = _platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


def _region(task: dict[str, Any] | None) -> str | None:
    zone = (task or {}).get("AvailabilityZone")
    if zone:
        return zone[:-1] if zone[-1].isalpha() else zone
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


_METADATA_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?")


def parse_metadata_time(text: str) -> dt.datetime | None:
    """ECS metadata timestamps (``2020-10-08T20:47:16.053330955Z``: nanoseconds, 'Z') as UTC."""
    if not text:
        return None  # not on ECS: no pattern to compile in every run process
    found = _METADATA_TIME.match(text)
    if not found:
        return None
    fraction = (found.group(2) or ".0")[:7]
    return dt.datetime.fromisoformat(found.group(1) + fraction).replace(tzinfo=dt.timezone.utc)


def _pulled_seconds(task: dict[str, Any] | None) -> float | None:
    """Seconds since the image pull started (Fargate bills from then), or None."""
    when = parse_metadata_time((task or {}).get("PullStartedAt") or "")
    return None if when is None else max((dt.datetime.now(dt.timezone.utc) - when).total_seconds(), 0.0)


def requested(infra: dict[str, Any], task: dict[str, Any] | None) -> tuple[Measured | None, Measured | None]:
    """Requested cpu units and memory MiB: the run's launch record, else the task metadata's
    limits, else the Process memory limit in the environment."""
    limits = (task or {}).get("Limits") or {}
    cpu = memory = None
    if infra.get("cpu"):
        cpu = Measured(value=float(infra["cpu"]), source="flow run infrastructure record")
    elif limits.get("CPU"):
        cpu = Measured(value=float(limits["CPU"]) * 1024, source="ECS task metadata Limits.CPU")
    if infra.get("memory"):
        memory = Measured(value=float(infra["memory"]), source="flow run infrastructure record")
    elif limits.get("Memory"):
        memory = Measured(value=float(limits["Memory"]), source="ECS task metadata Limits.Memory")
    elif os.environ.get("FLEETFLOW_MEMORY_LIMIT_MIB"):
        memory = Measured(value=float(os.environ["FLEETFLOW_MEMORY_LIMIT_MIB"]), source="FLEETFLOW_MEMORY_LIMIT_MIB")
    return cpu, memory


def build_usage(m: Measurement, infra: dict[str, Any], task: dict[str, Any] | None) -> RunUsage:
    """The record from a measurement, the run's launch record and the ECS task metadata (pure)."""
    kind = infra.get("kind") or os.environ.get("FLEETFLOW_LAUNCH_KIND")
    cpu, memory = requested(infra, task)
    pulled = _pulled_seconds(task)
    sampled = f"sampled every {m.interval:g} s and at the end"
    return RunUsage(
        peak_memory_mib=m.peak_memory,
        peak_address_space_mib=(Measured(value=m.peak_address_space_mib, source="/proc/self/status VmPeak")
                                if m.peak_address_space_mib is not None else None),
        cpu_seconds=Measured(value=m.cpu_seconds, source=m.cpu_source),
        avg_cpu=Measured(value=m.cpu_seconds / m.wall_seconds, source="cpu seconds / wall seconds"),
        peak_cpu=Measured(value=m.peak_cpu, source=f"busiest interval, {sampled}"),
        wall_seconds=Measured(value=m.wall_seconds, source="runner monotonic clock"),
        billed_seconds=(Measured(value=pulled, source="ECS task metadata PullStartedAt to the end")
                        if pulled is not None else Measured(value=m.wall_seconds, source="runner wall time")),
        requested_cpu=cpu, requested_memory_mib=memory, samples=m.samples, interval_seconds=m.interval,
        platform=Platform(kind=kind, launch_type=infra.get("launch_type") or (task or {}).get("LaunchType"),
                          region=_region(task), arch=_arch(),
                          spot=bool(infra.get("spot")) or infra.get("launch_type") == "FARGATE_SPOT"),
    )


def with_warnings(state: "State", warnings: list[str]) -> "State":
    """The state with the warnings appended to its message."""
    if not warnings:
        return state
    message = "; ".join([state.message, *warnings] if state.message else warnings)
    return state.model_copy(update={"message": message})


class UsageRecorder:
    """Measures one flow run in this runner process."""

    def __init__(self, client: OrchestratorAPI, flow_run_id: str, sampler: Sampler) -> None:
        self.client, self.flow_run_id, self.sampler = client, flow_run_id, sampler
        self.usage: RunUsage | None = None
        self.deployment_name: str | None = None  # the runner's, once it has read the deployment

    @classmethod
    def start(cls, client: OrchestratorAPI, flow_run_id: str) -> "UsageRecorder | None":
        """A started recorder, or None when usage measuring is off (FLEETFLOW_USAGE_ENABLED=false)."""
        from ..settings import get_settings

        settings = get_settings()
        if not settings.usage_enabled:
            return None
        return cls(client, flow_run_id, Sampler(settings.usage_sample_interval).start())

    def finish(self, state: "State") -> "State":
        """Stop measuring, store the record, log its warnings; the state, with them in its message."""
        try:
            run = self.client.read_flow_run(self.flow_run_id)
            usage = build_usage(self.sampler.stop(), run.infrastructure or {},
                                src.ecs_task_metadata(self.sampler.ecs_uri))
            usage.warnings = fit_warnings(usage, self._deployment_name(run))
            self.client.write_flow_run_usage(self.flow_run_id, usage.model_dump(mode="json"))
            self.usage = usage
            self._log(run, usage.warnings)
            return with_warnings(state, usage.warnings)
        except Exception as exc:  # noqa: BLE001 - a failed measurement must not change the run's outcome
            print(f"fleetflow runner: could not record usage: {type(exc).__name__}: {exc}", file=sys.stderr)
            return state

    def _deployment_name(self, run: Any) -> str | None:
        if not run.deployment_id:
            return None
        if self.deployment_name is not None:
            return self.deployment_name
        try:
            return self.client.read_deployment(run.deployment_id).full_name
        except Exception:  # noqa: BLE001
            return None

    def _log(self, run: Any, warnings: list[str]) -> None:
        if not warnings:
            return  # most runs: no logger to set up
        from ..engine.logs import run_logger

        logger = run_logger(run, self.client)
        for warning in warnings:
            logger.warning(warning)


def rehearse(rounds: int = 12) -> None:
    """The pure steps of measuring a run -- sampling this process through /proc, building and
    checking the record, encoding it -- with no thread and no store, for the fork server's
    template (see :mod:`fleetflow.orchestrator.lite_rehearsal`: its children then
    find this code warmed up)."""
    from ..states import Completed

    for _ in range(rounds):
        Sampler(5.0)  # finds the cgroup (reads /proc); started, it would start a thread
        src.tree_cpu_seconds()
        src.tree_rss_mib()
        src.rusage_peak_mib()
        src.own_vm_peak_mib()
        measured = Measurement(wall_seconds=1.0, cpu_seconds=0.5, peak_cpu=0.5, peak_memory=None,
                               peak_address_space_mib=None, samples=1, interval=5.0)
        usage = build_usage(measured, {}, src.ecs_task_metadata(None))
        usage.warnings = fit_warnings(usage, "flow/deployment")
        usage.model_dump(mode="json")
        with_warnings(Completed(), usage.warnings)
