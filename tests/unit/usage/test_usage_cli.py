"""`fleetflow cost report` and `fleetflow deployment recommend` input handling: durations,
headroom, unknown deployments, empty stores (one-line errors, never tracebacks)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from fleetflow.cli import app
from fleetflow.cli.cost import parse_since
from fleetflow.cli.recommend import parse_headroom
from fleetflow.exceptions import ConfigurationError
from fleetflow.testing import temporary_store

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_since_and_headroom_parse():
    assert parse_since("7d", NOW) == NOW - dt.timedelta(days=7)
    assert parse_since("12h", NOW) == NOW - dt.timedelta(hours=12) and parse_since("2w", NOW) == NOW - dt.timedelta(weeks=2)
    assert parse_since("2026-11-01", NOW) == dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ConfigurationError, match="7d, 12h"):
        parse_since("last week", NOW)
    assert parse_headroom("25%") == 0.25 and parse_headroom("0.5") == 0.5
    with pytest.raises(ConfigurationError, match="percentage"):
        parse_headroom("lots")


def test_errors_are_one_line_and_empty_stores_report_zero():
    with temporary_store():
        bad = invoke("cost", "report", "--since", "yesterday")
        assert bad.exit_code == 1 and "Error: --since 'yesterday'" in bad.stderr and "Traceback" not in bad.output
        missing = invoke("deployment", "recommend", "nope/nope")
        assert missing.exit_code == 1 and "Error:" in missing.stderr and "Traceback" not in missing.output
        empty = invoke("cost", "report", "--json")
        assert empty.exit_code == 0, empty.output
        data = json.loads(empty.stdout)
        assert data["total"] == 0 and data["deployments"] == []
