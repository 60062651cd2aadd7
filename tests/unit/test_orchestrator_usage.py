"""The store's usage records on SQLite and PostgreSQL: write, replace, read one and many,
deleted with their run, refused for a missing run."""

from __future__ import annotations

import pytest

from fleetflow.exceptions import ConfigurationError, ObjectNotFound


def test_usage_records_round_trip(orchestrator):
    run = orchestrator.create_flow_run("f")
    other = orchestrator.create_flow_run("g")
    assert orchestrator.read_flow_run_usage(run.id) is None
    orchestrator.write_flow_run_usage(run.id, {"wall_seconds": {"value": 1.5, "source": "x"}})
    orchestrator.write_flow_run_usage(run.id, {"wall_seconds": {"value": 2.5, "source": "x"}})  # replaces
    assert orchestrator.read_flow_run_usage(run.id)["wall_seconds"]["value"] == 2.5
    assert orchestrator.read_flow_run_usages([run.id, other.id, run.id]) == {run.id: {"wall_seconds": {"value": 2.5, "source": "x"}}}
    assert orchestrator.read_flow_run_usages([]) == {}
    with pytest.raises(ObjectNotFound):
        orchestrator.write_flow_run_usage("missing", {})
    with pytest.raises(ConfigurationError, match="at most 1000"):
        orchestrator.read_flow_run_usages([str(i) for i in range(1001)])
    orchestrator.delete_flow_run(run.id)
    assert orchestrator.read_flow_run_usage(run.id) is None
