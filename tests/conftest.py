"""Fixtures shared by the whole suite.

* every test gets its own ``FLEETFLOW_HOME`` (never the user's ~/.fleetflow) and fresh
  settings/client caches;
* ``store_url`` is parametrised over the backends in ``FLEETFLOW_TEST_BACKENDS``
  (default ``sqlite,postgres``): tests using it, ``orchestrator`` or ``temp_store`` run once
  per backend. PostgreSQL is a real server started once per session (``pg_server``), with a
  fresh database per test.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from fleetflow.client import reset_client
from fleetflow.orchestrator import Orchestrator
from fleetflow.settings import reset_settings
from fleetflow.testing import temporary_store

BACKENDS = [b.strip() for b in os.environ.get("FLEETFLOW_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]
_PARAMS = [pytest.param(b, marks=[pytest.mark.postgres] if b == "postgres" else []) for b in BACKENDS]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FLEETFLOW_HOME", str(tmp_path_factory.mktemp("fleetflow-home")))
    for name in ("FLEETFLOW_DATABASE_URL", "FLEETFLOW_API_URL"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    reset_client()
    yield
    reset_client()
    reset_settings()


@pytest.fixture(scope="session")
def pg_server() -> Iterator["PostgresServer"]:  # noqa: F821
    from pg_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=_PARAMS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """URL of an empty store on each configured backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_server").fresh_database()


@pytest.fixture
def backend(store_url: str) -> str:
    return "sqlite" if store_url.startswith("sqlite") else "postgres"


@pytest.fixture
def orchestrator(store_url: str) -> Iterator[Orchestrator]:
    store = Orchestrator.create(store_url)
    yield store
    store.dispose()


@pytest.fixture
def temp_store_url(store_url: str) -> str:
    """URL of the database behind ``temp_store`` (to check what is stored at rest)."""
    return store_url


@pytest.fixture
def temp_store(temp_store_url: str):
    """The process-wide client (``fleetflow.client.get_client()``) pointed at an empty store of
    each backend, for tests that run flows end to end."""
    with temporary_store(database_url=temp_store_url) as client:
        yield client
