"""Pure parsers for CLI times: ``--start-in 10m`` / ``'2 hours'`` and ``--start-at``."""

from __future__ import annotations

import datetime as dt
import re

from ..exceptions import ConfigurationError

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_DURATION = re.compile(r"^\s*(?:in\s+)?(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> dt.timedelta:
    """'10m', '90s', '2 hours', 'in 5 minutes', '30' (seconds) -> a timedelta."""
    match = _DURATION.match(text or "")
    unit = (match.group(2) or "s").lower() if match else ""
    if not match or unit not in _UNITS:
        raise ConfigurationError(
            f"cannot read {text!r} as a duration; use e.g. '10m', '90s', '2 hours' or '1d'", field="start_in")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[unit])


def parse_start_at(text: str) -> dt.datetime:
    """An ISO date/time; without a time zone it is local time (like Prefect's CLI)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"cannot read {text!r} as a date and time; use ISO 8601, e.g. '2026-01-31 06:00' or '2026-01-31T06:00:00+00:00'",
            field="start_at",
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()  # local time zone
    return value.astimezone(dt.timezone.utc)


def scheduled_time(start_in: str | None, start_at: str | None, now: dt.datetime) -> dt.datetime | None:
    """When a run should start, from at most one of the two options."""
    if start_in and start_at:
        raise ConfigurationError("give --start-in or --start-at, not both", field="start_at")
    if start_in:
        return now + parse_duration(start_in)
    if start_at:
        return parse_start_at(start_at)
    return None
