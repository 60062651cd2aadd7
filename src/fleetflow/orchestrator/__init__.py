"""The state store: runs, states, logs, blocks, deployments, pools and workers.

``Orchestrator.create(url)`` gives the embedded store on SQLite or PostgreSQL; everything else
in fleetflow talks to it through :class:`fleetflow.client.protocol.OrchestratorAPI` (the
embedded client wraps it; the server serves it over HTTP).
"""

from .keys import ApiKey, Scope
from .schemas import BlockDocument, Deployment, FlowRun, LogRecord, TaskRun, Worker, WorkPool
from .service import Orchestrator, PostgresOrchestrator, SQLiteOrchestrator

__all__ = [
    "ApiKey",
    "Scope",
    "BlockDocument",
    "Deployment",
    "FlowRun",
    "LogRecord",
    "Orchestrator",
    "PostgresOrchestrator",
    "SQLiteOrchestrator",
    "TaskRun",
    "WorkPool",
    "Worker",
]
