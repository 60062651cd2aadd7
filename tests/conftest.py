"""Fixtures shared by the whole suite.

* every test gets its own ``FLEETFLOW_HOME`` (never the user's ~/.fleetflow) and fresh
  settings/client caches;
* ``store_url`` (and ``orchestrator``) are parametrised over the *store* backends in
  ``FLEETFLOW_TEST_BACKENDS`` (``sqlite``, ``postgres``): tests of the store itself;
* ``temp_store`` -- the process-wide client -- is parametrised over every backend there,
  including ``http``: a real uvicorn server on 127.0.0.1 in front of SQLite, started once per
  session and pointed at a fresh database for each test (``http-postgres``: the same in front
  of PostgreSQL). Default: ``sqlite,postgres,http``.
* PostgreSQL is a real server started once per session (``pg_server``), with a fresh
  database per test.
"""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest
from backends import BACKENDS, STORE_BACKENDS, backend_params

from fleetflow.client import reset_client
from fleetflow.orchestrator import Orchestrator
from fleetflow.settings import reset_settings
from fleetflow.testing import temporary_store



@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FLEETFLOW_HOME", str(tmp_path_factory.mktemp("fleetflow-home")))
    for name in ("FLEETFLOW_DATABASE_URL", "FLEETFLOW_API_URL", "FLEETFLOW_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    reset_client()
    yield
    reset_client()
    reset_settings()


@pytest.fixture(scope="session")
def pg_server() -> Iterator["PostgresServer"]:  # noqa: F821
    from pg_server import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory):
    """One fleetflow server per test session (per xdist worker), on 127.0.0.1 and a port the
    OS picked; each ``temp_store`` test points it at its own fresh database."""
    from fleetflow.server.serve import start_in_thread

    placeholder = Orchestrator.create(f"sqlite:///{tmp_path_factory.mktemp('api-server') / 'idle.db'}")
    server = start_in_thread(placeholder)
    yield server
    server.stop()
    placeholder.dispose()


@pytest.fixture(params=backend_params(STORE_BACKENDS))
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """URL of an empty store on each configured store backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return _fresh_pg_database(request)


@pytest.fixture(params=backend_params(BACKENDS))
def client_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test's ``temp_store`` (or of its ``store_url``)."""
    if "client_backend" in request.fixturenames:
        return request.getfixturevalue("client_backend")
    url = request.getfixturevalue("store_url")
    return "sqlite" if url.startswith("sqlite") else "postgres"


@pytest.fixture
def orchestrator(store_url: str) -> Iterator[Orchestrator]:
    store = Orchestrator.create(store_url)
    yield store
    store.dispose()


@pytest.fixture
def temp_store_url(client_backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """URL of the (empty) database behind ``temp_store``, to check what is stored at rest."""
    if "postgres" in client_backend:
        return _fresh_pg_database(request)
    return f"sqlite:///{tmp_path / 'store.db'}"


def _fresh_pg_database(request: pytest.FixtureRequest) -> str:
    """A new database for this test, dropped after it (after the fixtures using it close)."""
    server = request.getfixturevalue("pg_server")
    url = server.fresh_database()
    request.addfinalizer(lambda: server.drop_database(url))
    return url


@pytest.fixture
def temp_store(client_backend: str, temp_store_url: str, request: pytest.FixtureRequest):
    """The process-wide client (``fleetflow.client.get_client()``) pointed at an empty store of
    each backend, for tests that run flows end to end."""
    if not client_backend.startswith("http"):
        with temporary_store(database_url=temp_store_url) as client:
            yield client
        return
    server = request.getfixturevalue("api_server")
    store = Orchestrator.create(temp_store_url)
    _key, secret = store.create_api_key("test-admin", "admin")
    server.use_store(store)
    try:
        with temporary_store(api_url=server.url, api_key=secret) as client:
            yield client
    finally:
        store.dispose()


def pytest_configure(config: pytest.Config) -> None:
    """The chaos table, and scratch space in memory when the machine has room (tests/scratch.py
    says why). Both set on the controller only; pytest-xdist hands each worker its own
    ``<basetemp>/popen-gwN``."""
    if not hasattr(config, "workerinput"):
        import chaos_table

        # Opened here, before xdist starts its workers, so they inherit its name and every
        # worker's rows land in the one table printed at the end (tests/chaos_table.py).
        config._fleetflow_chaos_table = chaos_table.open_table()  # type: ignore[attr-defined]
    if hasattr(config, "workerinput") or config.option.basetemp:
        return
    from scratch import fast_root, make_dir

    if fast_root() is not None:
        config.option.basetemp = str(make_dir("ffpt-"))
        config._fleetflow_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    path = getattr(config, "_fleetflow_chaos_table", None)
    if path:
        import chaos_table

        rows = chaos_table.take_rows(path)
        if rows:
            terminalreporter.write_sep("=", "chaos: runs lost / executed twice / stuck")
            terminalreporter.write_line(chaos_table.format_table(rows))


def pytest_unconfigure(config: pytest.Config) -> None:
    own = getattr(config, "_fleetflow_basetemp", None)
    if own:  # an explicit --basetemp is never cleaned by pytest; this one is ours, in memory
        shutil.rmtree(own, ignore_errors=True)


def _cost_rank(item: pytest.Item) -> int:
    """Known-slow groups first, so that with ``-n 2`` the long tests start early and the run
    does not end with one worker busy on a Terraform apply while the other idles."""
    path = item.nodeid
    if item.get_closest_marker("terraform") or path.startswith("tests/terraform/"):
        return 0
    if path.startswith(("tests/e2e/", "tests/chaos/", "tests/browser/")):
        return 1
    if path.startswith("tests/integration/"):
        return 2
    return 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(arg.startswith("--random-order") for arg in config.invocation_params.args):
        return  # the flaky-test hunt asked for a shuffled order: keep it
    items.sort(key=_cost_rank)  # stable: the order inside each group is unchanged
