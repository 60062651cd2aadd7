"""The pure rules behind deleting per-run token secrets: which run a secret or a task belongs
to, and which secrets a sweep may delete."""

from __future__ import annotations

import datetime as dt

from fleetflow.aws.run_token_secrets import run_of_secret, sweepable, token_run_of_task

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fleetflow/run-tokens/r-1-AbCdEf"


def test_only_names_under_the_prefix_belong_to_a_run():
    assert run_of_secret("fleetflow/run-tokens/r-1") == "r-1"
    for name in ("fleetflow/run-tokens/", "fleetflow/run-tokens-x/r-1", "other/fleetflow/run-tokens/r-1",
                 "fleetflow/run-tokens/a/b", None, ""):
        assert run_of_secret(name) is None, name


def _task(env: list[dict]) -> dict:
    return {"overrides": {"containerOverrides": [{"name": "flow", "environment": env}]}}


def test_a_task_names_its_runs_secret_in_its_overrides():
    assert token_run_of_task(_task([{"name": "FLEETFLOW_API_KEY_SECRET_ARN", "value": ARN}]), "r-1") == "r-1"
    # another run's secret, no secret at all, or no run id: nothing to delete for this task
    assert token_run_of_task(_task([{"name": "FLEETFLOW_API_KEY_SECRET_ARN", "value": ARN}]), "r-2") is None
    assert token_run_of_task(_task([{"name": "FLEETFLOW_DATABASE_URL", "value": "x"}]), "r-1") is None
    assert token_run_of_task(_task([{"name": "FLEETFLOW_API_KEY_SECRET_ARN", "value": ARN}]), None) is None
    assert token_run_of_task({}, "r-1") is None


def _entry(run_id: str, changed: dt.datetime | None = None, created: dt.datetime | None = None) -> dict:
    entry = {"Name": f"fleetflow/run-tokens/{run_id}"}
    if changed:
        entry["LastChangedDate"] = changed
    if created:
        entry["CreatedDate"] = created
    return entry


def test_a_sweep_deletes_secrets_of_final_runs_written_before_they_ended():
    listed = [
        _entry("done", changed=T0 - dt.timedelta(minutes=5)),
        _entry("done-created-only", created=T0 - dt.timedelta(minutes=5)),
        _entry("done-no-dates"),
        _entry("relaunched", changed=T0 + dt.timedelta(seconds=30)),  # written again after the run ended
        _entry("running", changed=T0),
        _entry("unknown", changed=T0),
        {"Name": "someone/else", "LastChangedDate": T0},
    ]
    ended = {"done": T0, "done-created-only": T0, "done-no-dates": T0, "relaunched": T0}
    assert sweepable(listed, ended) == ["done", "done-created-only", "done-no-dates"]


def test_naive_timestamps_are_utc():
    assert sweepable([_entry("r", changed=dt.datetime(2026, 1, 1, 11, 59))], {"r": T0}) == ["r"]
    assert sweepable([_entry("r", changed=dt.datetime(2026, 1, 1, 12, 1))], {"r": T0}) == []
