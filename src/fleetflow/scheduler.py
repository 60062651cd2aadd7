"""Schedules: cron (with time zone) and interval slots turned into SCHEDULED runs.

Each slot's run carries the idempotency key ``scheduled:<slot ISO time>``; the store's
unique (deployment, key) constraint makes two schedulers racing on one slot create one run.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import states as st
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .client.protocol import OrchestratorAPI


def next_slots(schedule: dict[str, Any], *, count: int = 3, after: dt.datetime | None = None) -> list[dt.datetime]:
    """The next ``count`` start times (UTC) of a cron or interval schedule."""
    after = after or st.utcnow()
    if "cron" in schedule:
        return _cron_slots(schedule["cron"], schedule.get("timezone", "UTC"), after, count)
    if "interval" in schedule:
        return _interval_slots(float(schedule["interval"]), schedule.get("anchor_date"), after, count)
    if "rrule" in schedule:
        return _rrule_slots(schedule["rrule"], schedule.get("timezone", "UTC"), after, count)
    raise ConfigurationError("a schedule needs 'cron' (with optional 'timezone'), 'interval' (seconds) or 'rrule'",
                             field="schedule")


def _rrule_slots(text: str, tz: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    """RFC 5545 recurrence rules (Prefect's RRuleSchedule), read in the schedule's time zone."""
    from dateutil import rrule

    zone = ZoneInfo(tz)
    try:
        rule = rrule.rrulestr(text, dtstart=after.astimezone(zone).replace(microsecond=0), cache=False)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"invalid rrule {text!r}: {exc}; e.g. 'FREQ=DAILY;BYHOUR=6'", field="schedule.rrule") from None
    slots, cursor = [], after.astimezone(zone)
    while len(slots) < count:
        nxt = rule.after(cursor, inc=False)
        if nxt is None:
            break
        slots.append(nxt.astimezone(dt.timezone.utc))
        cursor = nxt
    return slots


def _cron_slots(expr: str, tz: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    from croniter import croniter

    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {tz!r}; use an IANA name like 'Europe/Paris'", field="schedule.timezone") from None
    if not croniter.is_valid(expr):
        raise ConfigurationError(f"invalid cron expression {expr!r}; e.g. '0 6 * * *' for 06:00 daily", field="schedule.cron")
    it = croniter(expr, after.astimezone(zone))
    return [it.get_next(dt.datetime).astimezone(dt.timezone.utc) for _ in range(count)]


def _interval_slots(seconds: float, anchor: str | None, after: dt.datetime, count: int) -> list[dt.datetime]:
    if seconds <= 0:
        raise ConfigurationError(f"interval must be > 0 seconds, got {seconds}", field="schedule.interval")
    start = dt.datetime.fromisoformat(anchor) if anchor else dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    n = int((after - start).total_seconds() // seconds) + 1
    return [start + dt.timedelta(seconds=seconds * (n + i)) for i in range(count)]


def schedule_deployment(client: OrchestratorAPI, deployment: Any, *, count: int = 3) -> list[str]:
    """Create the runs of the next slots (idempotent); returns the run ids."""
    ids = []
    for slot in next_slots(deployment.schedule, count=count):
        run = client.create_flow_run(
            deployment.flow_name,
            state=st.Scheduled(data={"scheduled_time": slot.isoformat()}),
            deployment_id=deployment.id, work_pool_name=deployment.work_pool_name,
            idempotency_key=f"scheduled:{slot.isoformat()}", expected_start_time=slot,
            parameters={}, tags=deployment.tags,
        )
        ids.append(run.id)
    return ids


def run_scheduler(client: OrchestratorAPI, *, interval: float = 5.0, once: bool = False) -> None:
    """Loop over scheduled deployments and keep their next slots materialised; also sweep
    expired leases of runs outside any pool (script flows), as every long-running process does."""
    import asyncio

    from .worker.sweep import sweep_unpooled, sweeper_owner

    owner = sweeper_owner("scheduler")
    while True:
        for deployment in client.read_deployments():
            if deployment.schedule and deployment.schedule.get("active", True):
                schedule_deployment(client, deployment)
        asyncio.run(sweep_unpooled(client, owner))
        if once:
            return
        time.sleep(interval)
