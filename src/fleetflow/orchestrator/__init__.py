"""The state store: runs, states, logs, blocks, deployments, pools and workers.

``Orchestrator.create(url)`` gives the embedded store on SQLite or PostgreSQL; everything else
in fleetflow talks to it through :class:`fleetflow.client.protocol.OrchestratorAPI` (the
embedded client wraps it; the server serves it over HTTP).

The names below are loaded on first use: importing a submodule (``orchestrator.schemas``, as
the engine does) must not load the SQL of the whole store and SQLAlchemy with it (start-up;
see :mod:`.lite`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "ApiKey": "keys",
    "Scope": "keys",
    "BlockDocument": "schemas",
    "Deployment": "schemas",
    "FlowRun": "schemas",
    "LogRecord": "schemas",
    "TaskRun": "schemas",
    "Worker": "schemas",
    "WorkPool": "schemas",
    "Orchestrator": "service",
    "PostgresOrchestrator": "service",
    "SQLiteOrchestrator": "service",
}

__all__ = sorted(_HOMES)

if TYPE_CHECKING:
    from .keys import ApiKey, Scope
    from .schemas import BlockDocument, Deployment, FlowRun, LogRecord, TaskRun, Worker, WorkPool
    from .service import Orchestrator, PostgresOrchestrator, SQLiteOrchestrator


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
