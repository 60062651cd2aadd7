"""Area 11: Prefect 2 CLI habits: deployment build flags, run --params/--start-in/--start-at,
pause-/resume-schedule, flow ls, --version, metavars, option hints, agent start -q."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys

import pytest
import yaml

from compat_cli import invoke
from fleetflow.cli.timing import parse_duration, parse_start_at, scheduled_time
from fleetflow.exceptions import ConfigurationError
from fleetflow.states import StateType
from waiting import wait_until

FLOWS = "from fleetflow import flow\n\n@flow\ndef sample(n: int = 1, label: str = 'x'):\n    return n\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "flows.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version_flag():
    from fleetflow import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"fleetflow {__version__}"


def test_help_metavars_read_like_prefect():
    text = invoke("deployment", "build", "--help").stdout
    assert "TEXT" in text and "FLOAT" in text and "PATH" in text
    assert "<str>" not in text and "<list[str]>" not in text and "<bool>" not in text
    assert "INTEGER" in invoke("flow-run", "ls", "--help").stdout


def test_unknown_prefect_option_gets_a_suggestion():
    result = invoke("worker", "start", "--work-pool", "x")
    assert result.exit_code != 0
    assert "No such option: --work-pool" in result.output and "use -p/--pool POOL" in result.output


def test_deployment_build_takes_prefects_flags(temp_store, project):
    result = invoke("deployment", "build", "flows.py:sample", "-n", "nightly", "-q", "dev", "-t", "etl", "-t", "prod",
                    "-v", "7", "--description", "runs nightly", "--path", str(project), "-i", "process",
                    "--params", '{"n": 3}', "--param", "label=y", "--cron", "0 6 * * *", "--timezone", "Europe/Paris",
                    "--skip-upload", "-a", "-o", "dep.yaml")
    assert result.exit_code == 0, result.output
    dep = temp_store.read_deployment_by_name("sample/nightly")
    assert dep.work_pool_name == "dev" and dep.tags == ["etl", "prod"] and dep.version == "7"
    assert dep.description == "runs nightly" and dep.parameters == {"n": 3, "label": "y"}
    assert dep.schedule == {"cron": "0 6 * * *", "timezone": "Europe/Paris"}
    assert dep.bundle_digest is None and dep.path == str(project)  # --skip-upload: code imported from --path
    assert dep.infrastructure["type"] == "process"
    written = yaml.safe_load((project / "dep.yaml").read_text())
    assert written["skip_upload"] is True and written["version"] == "7"


def test_deployment_build_rrule_and_interval(temp_store, project):
    assert invoke("deployment", "build", "flows.py:sample", "-n", "weekly", "--rrule", "FREQ=WEEKLY;BYDAY=MO",
                  "--skip-upload", "-a").exit_code == 0
    assert temp_store.read_deployment_by_name("sample/weekly").schedule == {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"}
    bad = invoke("deployment", "build", "flows.py:sample", "-n", "both", "--cron", "* * * * *", "--interval", "60")
    assert bad.exit_code == 1 and "only one" in bad.stderr
    bad_json = invoke("deployment", "build", "flows.py:sample", "-n", "j", "--params", "{nope")
    assert bad_json.exit_code == 1 and "--params is not valid JSON" in bad_json.stderr


def test_deployment_run_params_and_start_in_at(temp_store, project):
    assert invoke("deployment", "build", "flows.py:sample", "-n", "d", "--skip-upload", "-a").exit_code == 0
    before = dt.datetime.now(dt.timezone.utc)
    result = invoke("deployment", "run", "sample/d", "--params", '{"n": 5}', "--start-in", "10m")
    assert result.exit_code == 0, result.output
    assert "Created flow run" in result.stdout
    run = temp_store.read_flow_runs(flow_name="sample")[0]
    assert run.parameters == {"n": 5} and run.state_type is StateType.SCHEDULED
    assert run.expected_start_time >= before + dt.timedelta(minutes=10)
    at = invoke("deployment", "run", "sample/d", "--start-at", "2031-02-03T04:05:00+00:00")
    assert at.exit_code == 0, at.output
    latest = temp_store.read_flow_runs(flow_name="sample")[0]
    assert latest.expected_start_time == dt.datetime(2031, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def test_pause_and_resume_schedule(temp_store, project):
    assert invoke("deployment", "build", "flows.py:sample", "-n", "s", "--interval", "60", "--skip-upload", "-a").exit_code == 0
    assert invoke("deployment", "pause-schedule", "sample/s").exit_code == 0
    assert temp_store.read_deployment_by_name("sample/s").schedule["active"] is False
    assert invoke("deployment", "resume-schedule", "sample/s").exit_code == 0
    assert temp_store.read_deployment_by_name("sample/s").schedule["active"] is True
    assert invoke("deployment", "build", "flows.py:sample", "-n", "plain", "--skip-upload", "-a").exit_code == 0
    no_schedule = invoke("deployment", "pause-schedule", "sample/plain")
    assert no_schedule.exit_code == 1 and "has no schedule" in no_schedule.stderr


def test_flow_ls(temp_store, project):
    from fleetflow import flow

    @flow
    def listed():
        return 1

    listed()
    assert invoke("deployment", "build", "flows.py:sample", "-n", "d1", "--skip-upload", "-a").exit_code == 0
    out = invoke("flow", "ls").stdout
    assert "listed" in out and "Completed" in out and "sample" in out and "d1" in out


def test_agent_start_with_queue_runs_a_worker(temp_store):
    from fleetflow.deployments import ensure_work_pool

    ensure_work_pool(temp_store, "dev")
    proc = subprocess.Popen([sys.executable, "-m", "fleetflow", "agent", "start", "-q", "dev"], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: temp_store.read_work_pool("dev").last_polled, "the agent's worker to poll pool 'dev'")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert "worker start --pool dev" in out + err


def test_time_parsers():
    assert parse_duration("10m") == dt.timedelta(minutes=10)
    assert parse_duration("2 hours") == dt.timedelta(hours=2)
    assert parse_duration("in 30 seconds") == dt.timedelta(seconds=30)
    assert parse_duration("45") == dt.timedelta(seconds=45)
    with pytest.raises(ConfigurationError, match="duration"):
        parse_duration("soon")
    assert parse_start_at("2030-01-01T00:00:00+02:00") == dt.datetime(2029, 12, 31, 22, tzinfo=dt.timezone.utc)
    with pytest.raises(ConfigurationError, match="ISO 8601"):
        parse_start_at("tomorrow-ish")
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert scheduled_time("1d", None, now) == now + dt.timedelta(days=1) and scheduled_time(None, None, now) is None
    with pytest.raises(ConfigurationError, match="not both"):
        scheduled_time("1m", "2030-01-01", now)
