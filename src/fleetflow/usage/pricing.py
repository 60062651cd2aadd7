"""What a run cost: requested vCPU x vCPU-second price + requested GB x GB-second price, over
the billed duration (Fargate's published model).

* Fargate: per second, with a one-minute minimum for Linux; Spot takes ``fargate_spot_discount`` off.
* ECS on EC2: the instance share is "n/a" unless ``ecs_ec2_*_hour_price`` is set.
* Process: free unless ``process_*_hour_price`` is set (no minimum).

The prices, their date and source, and the billing rule are in :mod:`.fargate_prices`.

Everything here is a pure function of its arguments except :func:`load_prices` (reads the file).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Rate:
    """Price per vCPU-second and per GB-second, and the billing minimum."""

    vcpu_second: float
    gb_second: float
    minimum_seconds: float = 0.0
    basis: str = ""


@dataclass(frozen=True)
class Cost:
    """A cost estimate; ``amount`` None means not computable (the ``basis`` says why)."""

    amount: float | None
    billed_seconds: float | None
    basis: str
    currency: str = "USD"


def billed_seconds(seconds: float, minimum: float = 0.0) -> float:
    """Rounded up to the whole second, and at least ``minimum``."""
    return max(float(math.ceil(max(seconds, 0.0) - 1e-9)), float(minimum))


def task_cost(cpu_units: float, memory_mib: float, seconds: float, rate: Rate) -> float:
    """The formula: vCPU x vCPU-second price + GB x GB-second price, over the billed seconds."""
    vcpu, gb = cpu_units / 1024, memory_mib / 1024
    return (vcpu * rate.vcpu_second + gb * rate.gb_second) * billed_seconds(seconds, rate.minimum_seconds)


@lru_cache(maxsize=8)
def _read(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the price file {path!r}: {exc}; fix it or unset "
                                 "FLEETFLOW_USAGE_PRICES_FILE", field="usage_prices_file") from exc


def load_prices(override: Path | None = None) -> dict[str, Any]:
    """The shipped price data, with the regions of ``override`` (a JSON file of the same shape) on top."""
    from .fargate_prices import PRICES

    data = dict(PRICES)
    if override is not None:
        extra = _read(str(Path(override).expanduser()))
        data["regions"] = {**data["regions"], **extra.get("regions", {})}
        for key in ("date", "source", "billing", "spot"):
            data[key] = extra.get(key, data[key])
    return data


def fargate_rate(prices: dict[str, Any], region: str | None, arch: str | None, *, spot: bool = False,
                 spot_discount: float = 0.7) -> Rate | None:
    """The Fargate rate for a region and architecture (Spot discounted), or None when unlisted."""
    arch_key = "arm64" if (arch or "").lower() in ("arm64", "aarch64", "arm") else "x86_64"
    found = prices["regions"].get(region or DEFAULT_REGION, {}).get(arch_key)
    if not found:
        return None
    factor = (1 - spot_discount) if spot else 1.0
    label = f"Fargate {'Spot ' if spot else ''}Linux/{'ARM' if arch_key == 'arm64' else 'x86'} {region or DEFAULT_REGION}"
    return Rate(found["vcpu_second"] * factor, found["gb_second"] * factor,
                prices["billing"]["minimum_seconds"], f"{label}, prices of {prices['date']}")


def hourly_rate(vcpu_hour: float | None, gb_hour: float | None, basis: str) -> Rate | None:
    """A rate from per-hour prices (EC2 instance share, local Process rate); None when unset."""
    if vcpu_hour is None and gb_hour is None:
        return None
    return Rate((vcpu_hour or 0.0) / 3600, (gb_hour or 0.0) / 3600, 0.0, basis)


def rate_for(platform: dict[str, Any], settings: Any, prices: dict[str, Any]) -> tuple[Rate | None, str]:
    """The rate for a run's platform and why: (rate, basis). ``platform`` is a
    :class:`~.model.Platform` dump; ``settings`` a :class:`fleetflow.settings.Settings`."""
    kind = platform.get("kind")
    if kind == "process":
        rate = hourly_rate(settings.process_vcpu_hour_price, settings.process_gb_hour_price, "local Process rate")
        return rate, "local Process rate"
    if kind == "ecs":
        if (platform.get("launch_type") or "FARGATE").upper() == "EC2":
            rate = hourly_rate(settings.ecs_ec2_vcpu_hour_price, settings.ecs_ec2_gb_hour_price, "EC2 instance share")
            return rate, "EC2 instance share" if rate else "n/a: ECS on EC2 (set FLEETFLOW_ECS_EC2_VCPU_HOUR_PRICE)"
        # "capacity providers" (a strategy that may mix FARGATE and FARGATE_SPOT) is priced
        # On-Demand: the estimate errs high rather than low.
        spot = bool(platform.get("spot")) or platform.get("launch_type") == "FARGATE_SPOT"
        rate = fargate_rate(prices, platform.get("region"), platform.get("arch"), spot=spot,
                            spot_discount=settings.fargate_spot_discount)
        region = platform.get("region") or DEFAULT_REGION
        return rate, rate.basis if rate else f"n/a: no Fargate price for {region} (FLEETFLOW_USAGE_PRICES_FILE)"
    return None, "n/a: runs in its parent's process"


def estimate(cpu_units: float | None, memory_mib: float | None, seconds: float | None, rate: Rate | None,
             basis: str) -> Cost:
    """The cost of one run, or an 'n/a' Cost saying what is missing."""
    if rate is None:
        if basis == "local Process rate":
            return Cost(0.0, seconds, "free (local process; set FLEETFLOW_PROCESS_VCPU_HOUR_PRICE for a rate)")
        return Cost(None, None, basis)
    if seconds is None:
        return Cost(None, None, "n/a: the run has no duration yet")
    if cpu_units is None and memory_mib is None:
        return Cost(None, None, "n/a: no requested cpu or memory")
    billed = billed_seconds(seconds, rate.minimum_seconds)
    return Cost(task_cost(cpu_units or 0, memory_mib or 0, seconds, rate), billed, rate.basis)
