"""Area 9: CronSchedule, IntervalSchedule, RRuleSchedule accepted by build_from_flow(schedule=...)
and flow.serve(interval=/cron=), and the scheduler honours them (and a paused schedule)."""

from __future__ import annotations

import datetime as dt

import pytest

from fleetflow import flow
from fleetflow.deployments import Deployment
from fleetflow.exceptions import ConfigurationError
from fleetflow.scheduler import next_slots, run_scheduler
from fleetflow.server.schemas.schedules import (CronSchedule, IntervalSchedule, RRuleSchedule,
                                                 schedule_from_options)

UTC = dt.timezone.utc
AFTER = dt.datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)


def test_schedule_objects_give_fleetflow_dicts_and_slots():
    cron = CronSchedule(cron="0 6 * * *", timezone="America/New_York")
    assert cron.to_dict() == {"cron": "0 6 * * *", "timezone": "America/New_York"}
    assert cron.next_dates(1, after=AFTER) == [dt.datetime(2024, 1, 1, 11, 0, tzinfo=UTC)]
    interval = IntervalSchedule(interval=dt.timedelta(hours=1), anchor_date=dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert interval.next_dates(2, after=AFTER) == [dt.datetime(2024, 1, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, 2, tzinfo=UTC)]
    assert IntervalSchedule(interval=90).to_dict() == {"interval": 90.0}
    rrule = RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0")
    assert rrule.next_dates(2, after=AFTER) == [dt.datetime(2024, 1, 1, 9, tzinfo=UTC), dt.datetime(2024, 1, 8, 9, tzinfo=UTC)]


def test_bad_schedules_are_refused_before_anything_is_stored():
    with pytest.raises(ValueError):
        IntervalSchedule(interval=0)
    with pytest.raises(ConfigurationError, match="rrule"):
        next_slots({"rrule": "FREQ=SOMETIMES"})
    with pytest.raises(ConfigurationError, match="only one"):
        schedule_from_options(interval=10, cron="* * * * *")
    with pytest.raises(ConfigurationError, match="CronSchedule"):
        Deployment(name="d", flow_name="f", entrypoint="x.py:f", schedule="daily")


def test_build_from_flow_accepts_schedule_objects_and_scheduler_creates_runs(temp_store, tmp_path, monkeypatch):
    (tmp_path / "flows.py").write_text("from fleetflow import flow\n\n@flow\ndef nightly():\n    return 1\n")
    monkeypatch.chdir(tmp_path)
    from fleetflow.runner import load_flow_from_entrypoint

    nightly = load_flow_from_entrypoint("flows.py:nightly", tmp_path)
    dep = Deployment.build_from_flow(nightly, "every-minute", schedule=IntervalSchedule(interval=60), version=1)
    assert dep.schedule == {"interval": 60.0} and dep.version == "1"
    dep_id = dep.apply(upload=False)
    run_scheduler(temp_store, once=True)
    runs = temp_store.read_flow_runs(deployment_id=dep_id)
    assert len(runs) == 3 and all(r.state_type.value == "SCHEDULED" for r in runs)

    stored = temp_store.read_deployment(dep_id)
    temp_store.upsert_deployment(stored.model_copy(update={"schedule": {**stored.schedule, "active": False}}))
    for r in runs:
        temp_store.delete_flow_run(r.id)
    run_scheduler(temp_store, once=True)
    assert temp_store.read_flow_runs(deployment_id=dep_id) == []  # a paused schedule creates nothing


def test_deployment_load(temp_store, tmp_path, monkeypatch):
    (tmp_path / "flows.py").write_text("from fleetflow import flow\n\n@flow\ndef etl(n: int = 1):\n    return n\n")
    monkeypatch.chdir(tmp_path)
    from fleetflow.runner import load_flow_from_entrypoint

    etl = load_flow_from_entrypoint("flows.py:etl", tmp_path)
    Deployment.build_from_flow(etl, "prod", parameters={"n": 5}, tags=["t1"], version="2").apply(upload=False)
    found = Deployment(name="prod", flow_name="etl", entrypoint="?")
    assert found.load() is True
    assert (found.entrypoint, found.parameters, found.tags, found.version) == ("flows.py:etl", {"n": 5}, ["t1"], "2")
    assert Deployment(name="nope", flow_name="etl", entrypoint="?").load() is False
