"""The `fleetflow` app itself: version, help, the console script, and the error boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import assert_one_line_error, invoke

from fleetflow.cli import _output


def test_console_script_version_in_subprocess(tmp_path):
    script = Path(sys.executable).with_name("fleetflow")
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path),
           "FLEETFLOW_DATABASE_URL": "postgresql+psycopg://fleet:s3cr3t-pw@db:5432/fleet"}  # fmt: skip
    result = subprocess.run([str(script), "version", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["fleetflow"] and info["python"] and info["api_url_set"] is False
    assert info["database_url"] == "postgresql+psycopg://fleet:***@db:5432/fleet"
    assert "s3cr3t-pw" not in result.stdout

    text = subprocess.run([str(script), "version"], env=env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "fleetflow" in text.stdout and "s3cr3t-pw" not in text.stdout


def test_python_dash_m_fleetflow(tmp_path):
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path), "COLUMNS": "300"}
    result = subprocess.run([sys.executable, "-m", "fleetflow", "version"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path) in result.stdout


def test_help_lists_command_groups():
    result = invoke("--help")
    assert result.exit_code == 0
    for group in ("flow-run", "block", "work-pool", "version"):
        assert group in result.stdout


def test_unexpected_errors_are_one_line_with_debug_hint(monkeypatch):
    def boom():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("fleetflow.cli.flow_runs.open_client", boom)
    monkeypatch.delenv("FLEETFLOW_DEBUG", raising=False)
    result = invoke("flow-run", "ls")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: unexpected RuntimeError: disk on fire" in result.stderr
    assert "FLEETFLOW_DEBUG=1" in result.stderr

    monkeypatch.setenv("FLEETFLOW_DEBUG", "1")
    debug = invoke("flow-run", "ls")
    assert isinstance(debug.exception, RuntimeError)


def test_fleetflow_errors_stay_one_line_even_if_long(monkeypatch):
    from fleetflow.exceptions import ConfigurationError

    def bad():
        raise ConfigurationError("first part\nsecond part " + "x" * 300)

    monkeypatch.setattr("fleetflow.cli.work_pools.open_client", bad)
    assert_one_line_error(invoke("work-pool", "ls"), "first part second part")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4249, "0.42s"), (12.34, "12.3s"), (245, "4m05s"), (7380, "2h03m"), (3 * 86400 + 4 * 3600, "3d04h")],
)
def test_fmt_seconds(seconds, text):
    assert _output.fmt_seconds(seconds) == text


def test_small_formatters():
    assert _output.fmt_infra({"kind": "ecs", "cpu": 1024, "memory": 2048}) == "ecs cpu 1024 / mem 2048"
    assert _output.fmt_infra({"kind": "process"}) == "process"
    assert _output.fmt_infra({}) == "-"
    assert _output.short_handle("process:host1:4242") == "pid 4242@host1"
    assert _output.short_handle("arn:aws:ecs:eu-west-1:1:task/c/abcdef0123") == "task abcdef01"
    assert _output.mask_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert _output.mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert _output.state_name(None) == "-" and _output.short_id(None) == "-"


def test_typo_suggests_lazy_command():
    result = invoke("flow-runs", "ls")
    assert result.exit_code == 2 and "Did you mean 'flow-run'?" in result.output
