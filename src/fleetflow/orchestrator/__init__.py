"""The state store: runs, states, logs, blocks, deployments, pools and workers.

``Orchestrator.create(url)`` gives the embedded store on SQLite or PostgreSQL; everything else
in fleetflow talks to it through :class:`OrchestratorAPI` (see :mod:`fleetflow.client`).
"""

from .interface import OrchestratorAPI
from .schemas import BlockDocument, Deployment, FlowRun, LogRecord, TaskRun, Worker, WorkPool
from .service import Orchestrator, PostgresOrchestrator, SQLiteOrchestrator

__all__ = [
    "BlockDocument",
    "Deployment",
    "FlowRun",
    "LogRecord",
    "Orchestrator",
    "OrchestratorAPI",
    "PostgresOrchestrator",
    "SQLiteOrchestrator",
    "TaskRun",
    "WorkPool",
    "Worker",
]
