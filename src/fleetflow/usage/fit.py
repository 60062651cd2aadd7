"""Fit warnings: a peak above 90% of the memory limit risks OOM, one below 25% pays for memory
it never used. Pure functions of a :class:`~.model.RunUsage`."""

from __future__ import annotations

from .model import RunUsage

HIGH = 0.90
LOW = 0.25


def limited_peak_mib(usage: RunUsage) -> float | None:
    """The peak the memory limit applies to: resident memory, and for a Process run (whose
    limit is RLIMIT_AS) its address space too."""
    peaks = [usage.value("peak_memory_mib")]
    if usage.platform.kind == "process":
        peaks.append(usage.value("peak_address_space_mib"))
    found = [p for p in peaks if p is not None]
    return max(found) if found else None


def fit_warnings(usage: RunUsage, deployment: str | None = None, *, high: float = HIGH, low: float = LOW) -> list[str]:
    """Zero or one warning about the memory fit, with what to do about it."""
    peak, limit = limited_peak_mib(usage), usage.value("requested_memory_mib")
    if peak is None or not limit:
        return []
    share = peak / limit
    # A Process run's limit caps address space, which is often above resident memory: name
    # the number the warning is about, so it matches neither more nor less than "used ...".
    what = "peak memory" if peak == usage.value("peak_memory_mib") else "peak address space"
    how = f"`fleetflow deployment recommend {deployment}`" if deployment else "`fleetflow deployment recommend`"
    if share > high:
        return [f"OOM risk: {what} {peak:.0f} MiB is {share:.0%} of the {limit:.0f} MiB limit; "
                f"raise memory, or see {how}"]
    if share < low:
        return [f"over-sized: {what} {peak:.0f} MiB is {share:.0%} of the {limit:.0f} MiB requested; "
                f"{how} proposes a smaller size"]
    return []
