"""``fleetflow.client.get_client`` and ``fleetflow.testing.temporary_store``."""

from __future__ import annotations

import os

import pytest

from fleetflow.client import get_client, reset_client
from fleetflow.exceptions import ConfigurationError
from fleetflow.settings import reset_settings
from fleetflow.testing import temporary_store


def test_get_client_is_cached_per_url(tmp_path, monkeypatch):
    first = get_client()
    assert get_client() is first
    assert str(first.store.engine.url).endswith("fleetflow.db")
    monkeypatch.setenv("FLEETFLOW_HOME", str(tmp_path / "other"))
    reset_settings()
    second = get_client()
    assert second is not first and str(tmp_path / "other") in str(second.store.engine.url)
    reset_client()
    assert get_client() is not second


def test_temporary_store_isolates_and_restores():
    before = {k: os.environ.get(k) for k in ("FLEETFLOW_HOME", "FLEETFLOW_DATABASE_URL")}
    outer = get_client()
    outer.create_flow_run("outside")
    with temporary_store() as client:
        assert client is get_client() and client is not outer
        assert client.read_flow_runs() == []
        client.create_flow_run("inside")
        home = os.environ["FLEETFLOW_HOME"]
    assert not os.path.exists(home)
    assert {k: os.environ.get(k) for k in before} == before
    assert [r.flow_name for r in get_client().read_flow_runs()] == ["outside"]


def test_temp_store_fixture_runs_on_each_backend(temp_store, backend):
    run = temp_store.create_flow_run("f")
    assert get_client() is temp_store
    assert get_client().read_flow_run(run.id).flow_name == "f"
    # SQLite: the plain path (orchestrator/lite.py), as a script on an existing store opens it.
    expected = {"sqlite": "PlainSQLiteStore", "postgres": "PostgresOrchestrator", "http": "HTTPClient"}[backend]
    assert type(getattr(temp_store, "store", temp_store)).__name__ == expected
