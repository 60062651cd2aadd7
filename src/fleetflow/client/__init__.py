"""The Orchestrator as user code, the engine, the worker and the CLI see it.

:func:`get_client` returns the process's shared :class:`~fleetflow.client.protocol.OrchestratorAPI`:

* the HTTP client when ``FLEETFLOW_API_URL`` is set (with ``FLEETFLOW_API_KEY``), or when a
  profile saved by ``fleetflow login`` exists under ``FLEETFLOW_HOME``;
* otherwise the embedded store for the settings' database URL (SQLite under
  ``FLEETFLOW_HOME`` by default, or ``FLEETFLOW_DATABASE_URL``).

Clients are cached per target, so code that changes the settings (tests,
:func:`fleetflow.testing.temporary_store`) gets a client for the new target on the next call.
"""

from __future__ import annotations

import threading

from ..settings import get_settings
from .protocol import OrchestratorAPI

_lock = threading.Lock()
_clients: dict[str, OrchestratorAPI] = {}


def _target() -> tuple[str, str | None, str | None]:
    """("http"|"sql", url, api key) for the current settings and saved profile."""
    settings = get_settings()
    if settings.api_url:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return "http", settings.api_url, key
    from .profile import read_profile

    profile = read_profile()
    if profile is not None:
        return "http", profile["url"], profile.get("key")
    return "sql", settings.resolved_database_url(), None


def get_client() -> OrchestratorAPI:
    """The shared client for the current settings (created, and migrated, on first use)."""
    kind, url, key = _target()
    cache_key = f"{kind}|{url}|{key or ''}"
    client = _clients.get(cache_key)
    if client is None:
        with _lock:
            client = _clients.get(cache_key)
            if client is None:
                client = _clients[cache_key] = _build(kind, url, key)
    return client


def _build(kind: str, url: str | None, key: str | None) -> OrchestratorAPI:
    if kind == "http":
        from .http import HTTPClient

        return HTTPClient(url or "", api_key=key)  # type: ignore[return-value]
    from .embedded import EmbeddedClient

    return EmbeddedClient.create(url)  # type: ignore[return-value]


def reset_client() -> None:
    """Close every cached client; the next :func:`get_client` builds a fresh one."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


__all__ = ["OrchestratorAPI", "get_client", "reset_client"]
