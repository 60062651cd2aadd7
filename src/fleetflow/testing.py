"""Public test helpers for fleetflow users' own tests (and fleetflow's).

    from fleetflow.testing import temporary_store

    def test_my_flow():
        with temporary_store() as client:
            my_flow()
            assert client.read_flow_runs()[0].state.is_completed()
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from .client import get_client, reset_client
from .client.protocol import OrchestratorAPI
from .settings import reset_settings

_ENV = ("FLEETFLOW_HOME", "FLEETFLOW_DATABASE_URL", "FLEETFLOW_API_URL", "FLEETFLOW_API_KEY")


def _create_store() -> None:
    """Create and migrate the store before the client opens it, so the client opens an existing
    store as a ``python script.py`` does every day (on SQLite: the plain path, orchestrator/lite.py)."""
    from .orchestrator.service import Orchestrator

    Orchestrator.create().dispose()


@contextlib.contextmanager
def temporary_store(
    database_url: str | None = None, *, api_url: str | None = None, api_key: str | None = None
) -> Iterator[OrchestratorAPI]:
    """Point fleetflow at a fresh, empty store for the duration of the block.

    Sets ``FLEETFLOW_HOME`` to a new temporary folder (results, keys and the SQLite file live
    there), uses ``database_url`` instead of the SQLite file when given (it should name an empty
    database) -- or, with ``api_url`` (and ``api_key``), a fleetflow server in front of an empty
    store -- clears cached settings and clients, and yields the client. Everything is restored
    afterwards and the folder removed.
    """
    saved = {name: os.environ.get(name) for name in _ENV}
    with tempfile.TemporaryDirectory(prefix="fleetflow-test-") as home:
        os.environ["FLEETFLOW_HOME"] = home
        wanted = {"FLEETFLOW_API_URL": api_url, "FLEETFLOW_API_KEY": api_key,
                  "FLEETFLOW_DATABASE_URL": None if api_url else database_url}  # fmt: skip
        for name, value in wanted.items():
            if value:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)
        reset_settings()
        reset_client()
        if not api_url:
            _create_store()
        try:
            yield get_client()
        finally:
            reset_client()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reset_settings()


__all__ = ["temporary_store"]
