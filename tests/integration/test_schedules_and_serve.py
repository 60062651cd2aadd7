"""Schedules (cron with time zone, interval; two schedulers never double-create) and flow.serve."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from fleetflow.exceptions import ConfigurationError
from fleetflow.scheduler import next_slots, schedule_deployment
from fleetflow.states import StateType
from worker_helpers import deploy, wait_final, wait_for

UTC = dt.timezone.utc


def test_cron_slots_respect_time_zone():
    after = dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    slots = next_slots({"cron": "0 9 * * *", "timezone": "Europe/Paris"}, count=2, after=after)
    assert slots == [dt.datetime(2026, 7, 2, 7, 0, tzinfo=UTC), dt.datetime(2026, 7, 3, 7, 0, tzinfo=UTC)]


def test_interval_slots_and_bad_schedules():
    after = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert next_slots({"interval": 60}, count=2, after=after) == [
        dt.datetime(2026, 1, 1, 0, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, 0, 2, tzinfo=UTC)]
    with pytest.raises(ConfigurationError, match="cron"):
        next_slots({"cron": "not a cron"})
    with pytest.raises(ConfigurationError, match="time zone"):
        next_slots({"cron": "* * * * *", "timezone": "Mars/Olympus"})


def test_two_schedulers_create_one_run_per_slot(temp_store, project):
    dep = temp_store.read_deployment(deploy(project, "echo", "sched", schedule={"interval": 3600}))
    barrier = threading.Barrier(4)
    results: list[list[str]] = []

    def scheduler():
        barrier.wait()
        results.append(schedule_deployment(temp_store, dep, count=3))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    runs = temp_store.read_flow_runs(deployment_id=dep.id)
    assert len(runs) == 3 and all(sorted(r) == sorted(results[0]) for r in results)
    assert all(r.state.type is StateType.SCHEDULED and r.expected_start_time > dt.datetime.now(UTC) for r in runs)


def test_scheduler_cli_once(temp_store, project):
    from fleetflow.cli import app

    deploy(project, "echo", "cli-sched", schedule={"cron": "*/5 * * * *", "timezone": "UTC"})
    out = CliRunner().invoke(app, ["scheduler", "--once"])
    assert out.exit_code == 0, out.output
    assert len(temp_store.read_flow_runs(flow_name="echo")) == 3


def test_run_deployment_awaited_in_async_flow(temp_store, project, worker):
    from fleetflow import flow
    from fleetflow.deployments import run_deployment

    deploy(project, "echo", "async")

    @flow
    async def parent():
        runs = await asyncio.gather(*(run_deployment("echo/async", parameters={"x": i}) for i in range(3)))
        return sorted(r.result()["x"] for r in runs)

    assert asyncio.run(parent()) == [0, 1, 2]


def test_flow_serve_runs_triggered_deployment(temp_store, project):
    code = "import sys; sys.path.insert(0, '.'); from flows import echo; echo.serve('served')"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=project, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "fleetflow deployment run 'echo/served'" in "".join(proc.stdout.readline() for _ in range(2))
        wait_for(lambda: temp_store.read_work_pool("serve-echo-served").last_polled, what="serve polling")
        from fleetflow.cli import app

        out = CliRunner().invoke(app, ["deployment", "run", "echo/served", "--param", "x=7"])
        assert out.exit_code == 0, out.output
        run = temp_store.read_flow_runs(flow_name="echo")[0]
        assert wait_final(temp_store, run.id).result()["x"] == 7
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_await_flow_serve_inside_event_loop(temp_store, project):
    """``await flow.serve(...)`` serves from a running loop (it used to raise from asyncio.run)."""
    code = ("import asyncio, sys; sys.path.insert(0, '.'); from flows import echo\n"
            "async def main():\n    await echo.serve('served-async')\nasyncio.run(main())")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=project, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "fleetflow deployment run 'echo/served-async'" in "".join(proc.stdout.readline() for _ in range(2))
        wait_for(lambda: temp_store.read_work_pool("serve-echo-served-async").last_polled, what="serve polling")
        from fleetflow.deployments import run_deployment

        run = run_deployment("echo/served-async", parameters={"x": 5}, timeout=60)
        assert run.result()["x"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)
