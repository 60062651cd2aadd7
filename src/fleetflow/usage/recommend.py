"""Right-sizing from past runs (pure): the smallest *valid* Fargate cpu/memory pair covering the
p95 peak memory and CPU of the last runs times (1 + headroom).

Never wrong in the dangerous direction: a run that crashed out of memory pushes the memory
need above its limit (to the next size up), and a CPU that ran saturated is not lowered.
The size menu is :data:`fleetflow.aws.fargate.FARGATE_SIZES` (not duplicated here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..aws.fargate import FARGATE_SIZES, check_fargate_size
from .pricing import Rate, task_cost

SATURATED = 0.9  # a peak above this share of the requested CPU may have been throttled


@dataclass(frozen=True)
class Observation:
    """What one past run tells us."""

    peak_memory_mib: float | None  # the peak its memory limit applies to
    peak_cpu: float | None  # vCPUs over the busiest interval
    requested_cpu: float | None
    requested_memory_mib: float | None
    oom: bool = False
    billed_seconds: float | None = None


@dataclass
class Recommendation:
    current: tuple[int, int] | None
    proposed: tuple[int, int] | None
    runs: int
    p95_memory_mib: float | None = None
    p95_cpu: float | None = None
    need_memory_mib: float | None = None
    need_cpu_units: float | None = None
    oom_runs: int = 0
    at_risk: int = 0
    saving_per_run: float | None = None
    runs_per_month: float | None = None
    saving_per_month: float | None = None
    price_basis: str = ""
    reasons: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def changes(self) -> bool:
        return self.proposed is not None and self.proposed != self.current


def percentile(values: list[float], q: float = 0.95) -> float:
    """Nearest-rank percentile (p95 of 20 runs is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def smallest_pair(need_cpu_units: float, need_memory_mib: float, rate: Rate) -> tuple[int, int] | None:
    """The cheapest valid Fargate pair with at least that cpu and memory, or None when none is big enough."""
    best: tuple[float, int, int] | None = None
    for cpu, memories in FARGATE_SIZES.items():
        if cpu < need_cpu_units:
            continue
        memory = next((m for m in memories if m >= need_memory_mib), None)
        if memory is None:
            continue
        check_fargate_size(cpu, memory)  # the table is the validator's: a pair from it always passes
        price = task_cost(cpu, memory, 3600, Rate(rate.vcpu_second, rate.gb_second))
        if best is None or (price, cpu, memory) < best:
            best = (price, cpu, memory)
    return (best[1], best[2]) if best else None


def _needs(observations: list[Observation], headroom: float, current: tuple[int, int] | None,
           rec: Recommendation) -> None:
    memory = [o.peak_memory_mib for o in observations if o.peak_memory_mib is not None and not o.oom]
    cpu = [o.peak_cpu for o in observations if o.peak_cpu is not None and not o.oom]
    rec.p95_memory_mib = percentile(memory) if memory else None
    rec.p95_cpu = percentile(cpu) if cpu else None
    rec.need_memory_mib = (rec.p95_memory_mib or 0) * (1 + headroom)
    rec.need_cpu_units = (rec.p95_cpu or 0) * (1 + headroom) * 1024
    for o in observations:
        if o.oom and o.requested_memory_mib:
            rec.oom_runs += 1
            rec.need_memory_mib = max(rec.need_memory_mib, o.requested_memory_mib + 1)
    if rec.oom_runs:
        rec.reasons.append(f"{rec.oom_runs} run(s) ran out of memory: the proposal is above their limit")
    if current and rec.p95_cpu is not None and rec.p95_cpu * 1024 >= SATURATED * current[0]:
        rec.need_cpu_units = max(rec.need_cpu_units, current[0])
        rec.reasons.append("CPU ran near its limit (it may have been throttled): cpu is not lowered")


def recommend(observations: list[Observation], current: tuple[int, int] | None, *, headroom: float = 0.25,
              rate: Rate, runs_per_month: float | None = None, price_basis: str = "") -> Recommendation:
    """The proposal for a deployment whose last runs are ``observations`` and whose size today is ``current``."""
    rec = Recommendation(current=current, proposed=None, runs=len(observations), price_basis=price_basis)
    if not any(o.peak_memory_mib is not None or o.oom for o in observations):
        rec.message = ("no completed runs with a usage record yet: run the deployment (usage is measured by "
                       "the runner on every launch), then ask again")
        return rec
    _needs(observations, headroom, current, rec)
    rec.proposed = smallest_pair(rec.need_cpu_units or 0, rec.need_memory_mib or 0, rate)
    if rec.proposed is None:
        rec.message = f"no Fargate size has {rec.need_memory_mib:.0f} MiB; the largest is 16384 cpu / 122880 MiB"
        return rec
    rec.at_risk = sum(1 for o in observations if (o.peak_memory_mib or 0) > rec.proposed[1]
                      or (o.oom and (o.requested_memory_mib or 0) >= rec.proposed[1]))
    _savings(rec, observations, rate, runs_per_month)
    return rec


def _savings(rec: Recommendation, observations: list[Observation], rate: Rate, runs_per_month: float | None) -> None:
    seconds = [o.billed_seconds for o in observations if o.billed_seconds is not None]
    if rec.current is None or rec.proposed is None or not seconds:
        return
    mean = sum(seconds) / len(seconds)
    rec.saving_per_run = task_cost(*rec.current, mean, rate) - task_cost(*rec.proposed, mean, rate)
    rec.runs_per_month = runs_per_month
    if runs_per_month is not None:
        rec.saving_per_month = rec.saving_per_run * runs_per_month


def recommendation_summary(rec: Recommendation) -> str:
    """One line for the CLI and the UI's badge on the deployments page."""
    if rec.proposed is None:
        return rec.message
    now = f"{rec.current[0]} cpu / {rec.current[1]} MiB" if rec.current else "unknown size"
    new = f"{rec.proposed[0]} cpu / {rec.proposed[1]} MiB"
    if not rec.changes:
        return f"right-sized at {new} (p95 of the last {rec.runs} runs)"
    verb = "downsize" if rec.current and rec.proposed[1] <= rec.current[1] and rec.proposed[0] <= rec.current[0] else "resize"
    text = f"{verb} {now} -> {new}"
    if rec.saving_per_run is not None:
        # A size raised for safety costs more: say so, instead of a negative saving.
        verb, sign = ("saves", 1) if rec.saving_per_run >= 0 else ("costs", -1)
        text += f"; {verb} ${sign * rec.saving_per_run:.6f}{'' if sign > 0 else ' more'} per run"
        if rec.saving_per_month is not None:
            text += f" (${sign * rec.saving_per_month:.2f}/month at {rec.runs_per_month:.0f} runs/month)"
    text += f"; {rec.at_risk} of {rec.runs} past runs would have run out of memory"
    return text
