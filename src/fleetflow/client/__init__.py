"""The Orchestrator as user code, the engine, the worker and the CLI see it.

:func:`get_client` returns the process's shared :class:`~fleetflow.orchestrator.OrchestratorAPI`:
the embedded store for the settings' database URL (SQLite under ``FLEETFLOW_HOME`` by default,
or ``FLEETFLOW_DATABASE_URL``). It is cached per URL, so code that changes the settings (tests,
:func:`fleetflow.testing.temporary_store`) gets a store for the new URL on the next call.
"""

from __future__ import annotations

import threading

from ..exceptions import ConfigurationError
from ..orchestrator.interface import OrchestratorAPI
from ..settings import get_settings

_lock = threading.Lock()
_clients: dict[str, OrchestratorAPI] = {}


def get_client() -> OrchestratorAPI:
    """The shared client for the current settings (created and migrated on first use)."""
    settings = get_settings()
    if settings.api_url:
        # Seam for the HTTP client: it will be chosen here when FLEETFLOW_API_URL is set.
        raise ConfigurationError(
            "FLEETFLOW_API_URL is set but the HTTP client is not available yet; unset it to use "
            "the embedded store (FLEETFLOW_DATABASE_URL or the SQLite file under FLEETFLOW_HOME).",
            field="api_url",
        )
    url = settings.resolved_database_url()
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                from ..orchestrator.service import Orchestrator

                client = _clients[url] = Orchestrator.create(url)
    return client


def reset_client() -> None:
    """Dispose every cached client; the next :func:`get_client` builds a fresh one."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        dispose = getattr(client, "dispose", None)
        if dispose is not None:
            dispose()


__all__ = ["get_client", "reset_client"]
