"""The short texts the CLI, the run tree and the UI show: "used 1.3 of 4 GiB, 0.4 of 2 vCPU"
and "$0.0012". Pure functions."""

from __future__ import annotations

from .fit import limited_peak_mib
from .model import RunUsage
from .pricing import Cost


def _num(value: float) -> str:
    """1.25 -> '1.2', 4.0 -> '4', 0.086 -> '0.09', 12.4 -> '12'."""
    if value >= 10:
        return f"{value:.0f}"
    if value >= 1 or value == 0:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def usage_line(usage: RunUsage) -> str:
    """'used 1.3 of 4 GiB, 0.4 of 2 vCPU' (memory: the peak; CPU: the average over the run)."""
    parts = []
    peak, limit = usage.value("peak_memory_mib"), usage.value("requested_memory_mib")
    if peak is not None:
        of = f" of {_num(limit / 1024)}" if limit else ""
        parts.append(f"{_num(peak / 1024)}{of} GiB")
    cpu, requested = usage.value("avg_cpu"), usage.value("requested_cpu")
    if cpu is not None:
        of = f" of {_num(requested / 1024)}" if requested else ""
        parts.append(f"{_num(cpu)}{of} vCPU")
    return "used " + ", ".join(parts) if parts else "usage unknown"


def limit_share(usage: RunUsage) -> float | None:
    """The memory peak the limit applies to, as a share of the limit."""
    peak, limit = limited_peak_mib(usage), usage.value("requested_memory_mib")
    return peak / limit if peak is not None and limit else None


def money(amount: float, currency: str = "USD") -> str:
    symbol = "$" if currency == "USD" else f"{currency} "
    if amount == 0:
        return f"{symbol}0"
    return f"{symbol}{amount:.6f}" if amount < 0.01 else f"{symbol}{amount:,.4f}" if amount < 100 else f"{symbol}{amount:,.2f}"


def cost_text(cost: Cost) -> str:
    """'$0.000412', 'free' or 'n/a'."""
    if cost.amount is None:
        return "n/a"
    if cost.amount == 0:
        return "free"
    return money(cost.amount, cost.currency)
