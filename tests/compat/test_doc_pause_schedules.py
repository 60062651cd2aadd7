"""Adapted from Prefect 2 docs/concepts/flows.md ("Pause a flow run") and
docs/concepts/schedules.md (cron, interval and rrule schedules, Deployment.build_from_flow
(schedule=...), flow.serve(interval=)): only the imports changed."""

import threading
from datetime import datetime, timedelta

import pytest

from fleetflow import flow, pause_flow_run, task
from fleetflow.deployments import Deployment
from fleetflow.server.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from fleetflow.states import StateType
from compat_docs import Background, cli, write_project
from waiting import wait_until


def test_pause_a_flow_run_and_resume_it_from_the_cli(temp_store):
    @task(persist_result=True)
    def marvin_setup():
        return "a raft of ducks walk into a bar..."

    @task(persist_result=True)
    def marvin_punchline():
        return "it's a wonder none of them ducked!"

    @flow(persist_result=True)
    def inspiring_joke():
        marvin_setup()
        pause_flow_run(timeout=600)  # pauses for 10 minutes
        return marvin_punchline()

    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", inspiring_joke()), daemon=True)
    thread.start()
    run = wait_until(lambda: next((r for r in temp_store.read_flow_runs(flow_name="inspiring-joke")
                                   if r.state_type is StateType.PAUSED), None), "the flow run to pause")
    resumed = cli("flow-run", "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    thread.join(120)
    assert box["value"] == "it's a wonder none of them ducked!"


def test_pause_timeout_fails_the_run(temp_store):
    @flow
    def waits():
        pause_flow_run(timeout=0.1)

    with pytest.raises(Exception, match="never resumed"):
        waits()
    assert temp_store.read_flow_runs(flow_name="waits")[0].state.is_failed()


FLOWS = '''
from fleetflow import flow

@flow
def my_flow(name: str = "world"):
    return f"hello {name}"

if __name__ == "__main__":
    my_flow.serve(name="my-first-deployment", interval=3600)
'''


@pytest.mark.parametrize("schedule, expected", [
    (CronSchedule(cron="0 0 * * *", timezone="America/Chicago"), {"cron": "0 0 * * *", "timezone": "America/Chicago"}),
    (IntervalSchedule(interval=timedelta(minutes=10), anchor_date=datetime(2026, 1, 1, 0, 0),
                      timezone="America/Chicago"),
     {"interval": 600.0, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "America/Chicago"}),
    (RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20300730T040000Z"),
     {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20300730T040000Z", "timezone": "UTC"}),
])
def test_deployment_schedules(temp_store, tmp_path, monkeypatch, schedule, expected):
    project = write_project(tmp_path / "proj", FLOWS)
    monkeypatch.chdir(project)
    from fleetflow.entrypoints import load_flow_from_entrypoint

    my_flow = load_flow_from_entrypoint("flows.py:my_flow", project)
    deployment = Deployment.build_from_flow(flow=my_flow, name="scheduled", schedule=schedule)
    deployment.apply(upload=False)
    stored = temp_store.read_deployment_by_name("my-flow/scheduled")
    assert stored.schedule == expected
    assert cli("scheduler", "--once").returncode == 0
    runs = temp_store.read_flow_runs(flow_name="my-flow")
    assert runs and all(r.state_type is StateType.SCHEDULED for r in runs)


def test_serve_with_an_interval(temp_store, tmp_path):
    project = write_project(tmp_path / "proj", FLOWS)
    served = Background(sys_executable(), "flows.py", cwd=project)
    try:
        dep = wait_until(lambda: next(iter(temp_store.read_deployments(flow_name="my-flow")), None),
                         "the served deployment")
        assert dep.name == "my-first-deployment" and dep.schedule == {"interval": 3600.0}
        wait_until(lambda: temp_store.read_flow_runs(deployment_id=dep.id), "the first scheduled runs")
        run = cli("deployment", "run", "my-flow/my-first-deployment", "--params", '{"name": "marvin"}')
        assert run.returncode == 0, run.stderr
        created = [r for r in temp_store.read_flow_runs(deployment_id=dep.id) if r.parameters == {"name": "marvin"}][0]
        final = wait_until(lambda: (lambda r: r if r.state and r.state.is_final else None)(temp_store.read_flow_run(created.id)),
                           "the served run to finish")
        assert final.state.result() == "hello marvin"
    finally:
        served.stop()


def sys_executable() -> str:
    import sys

    return sys.executable
