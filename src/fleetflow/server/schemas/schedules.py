"""Prefect-compatible schedule objects (``prefect.server.schemas.schedules``).

They are thin pydantic models over fleetflow's schedule dicts (``{'cron': ..., 'timezone':
...}``, ``{'interval': seconds}``, ``{'rrule': ...}``): ``Deployment.build_from_flow(schedule=
CronSchedule(cron="0 6 * * *"))`` and ``flow.serve(cron=...)`` store the same dict the CLI does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(default=None, description="IANA time zone, e.g. 'America/New_York' (default UTC).")

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def next_dates(self, n: int = 3, after: dt.datetime | None = None) -> list[dt.datetime]:
        """The next ``n`` start times in UTC (validates the schedule)."""
        from ...scheduler import next_slots

        return next_slots(self.to_dict(), count=n, after=after)


class CronSchedule(_Schedule):
    """Runs at the times a cron expression names, in ``timezone``."""

    cron: str = Field(description="Cron expression, e.g. '0 6 * * *'.")
    day_or: bool = Field(default=True, description="Prefect's day-of-month/day-of-week OR rule (croniter's default).")

    def to_dict(self) -> dict[str, Any]:
        return {"cron": self.cron, "timezone": self.timezone or "UTC"}


class IntervalSchedule(_Schedule):
    """Runs every ``interval``, counted from ``anchor_date``."""

    interval: dt.timedelta = Field(description="Time between runs (a timedelta or seconds).")
    anchor_date: dt.datetime | None = Field(default=None, description="A time the schedule passes through.")

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: dt.timedelta) -> dt.timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("interval must be positive")
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"interval": self.interval.total_seconds()}
        if self.anchor_date is not None:
            anchor = self.anchor_date if self.anchor_date.tzinfo else self.anchor_date.replace(tzinfo=dt.timezone.utc)
            out["anchor_date"] = anchor.isoformat()
        if self.timezone:
            out["timezone"] = self.timezone
        return out


class RRuleSchedule(_Schedule):
    """Runs at the times an RFC 5545 recurrence rule names, e.g. 'FREQ=WEEKLY;BYDAY=MO'."""

    rrule: str = Field(description="Recurrence rule text.")

    def to_dict(self) -> dict[str, Any]:
        return {"rrule": self.rrule, "timezone": self.timezone or "UTC"}


def schedule_to_dict(schedule: Any) -> dict[str, Any] | None:
    """A schedule object or dict -> the dict fleetflow stores (None stays None)."""
    if schedule is None or isinstance(schedule, dict):
        return schedule
    if isinstance(schedule, _Schedule):
        return schedule.to_dict()
    from ...exceptions import ConfigurationError

    raise ConfigurationError(
        f"schedule must be a CronSchedule, IntervalSchedule, RRuleSchedule or dict, got {type(schedule).__name__}",
        field="schedule",
    )


def schedule_from_options(*, schedule: Any = None, interval: Any = None, cron: str | None = None,
                          rrule: str | None = None, timezone: str | None = None) -> dict[str, Any] | None:
    """``serve(interval=/cron=/rrule=)`` and CLI flags -> one schedule dict (at most one given)."""
    from ...exceptions import ConfigurationError

    given = [x for x in (schedule, interval, cron, rrule) if x is not None]
    if len(given) > 1:
        raise ConfigurationError("give only one of schedule, interval, cron or rrule", field="schedule")
    if interval is not None:
        seconds = interval.total_seconds() if isinstance(interval, dt.timedelta) else float(interval)
        return IntervalSchedule(interval=dt.timedelta(seconds=seconds), timezone=timezone).to_dict()
    if cron is not None:
        return CronSchedule(cron=cron, timezone=timezone).to_dict()
    if rrule is not None:
        return RRuleSchedule(rrule=rrule, timezone=timezone).to_dict()
    return schedule_to_dict(schedule)


__all__ = ["CronSchedule", "IntervalSchedule", "RRuleSchedule", "schedule_to_dict", "schedule_from_options"]
