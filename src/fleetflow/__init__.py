"""fleetflow: Python workflows whose sub-flows each run on their own process or ECS task.

The public API is exactly ``__all__`` (a test pins it). Import paths mirror Prefect 2 so a
migration is a change of imports: ``prefect`` -> ``fleetflow``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "flow",
    "task",
    "Flow",
    "Task",
    "get_run_logger",
    "get_client",
    "run_deployment",
    "unmapped",
    "task_input_hash",
    "exponential_backoff",
    "State",
    "StateType",
    "FleetflowError",
    "allow_failure",
    "pause_flow_run",
    "resume_flow_run",
    "tags",
    "__version__",
]

# Lazy attributes keep `import fleetflow` fast (start-up time is a benchmark target).
_LAZY = {
    "flow": "fleetflow.flows",
    "Flow": "fleetflow.flows",
    "task": "fleetflow.tasks",
    "Task": "fleetflow.tasks",
    "unmapped": "fleetflow.tasks",
    "task_input_hash": "fleetflow.tasks",
    "exponential_backoff": "fleetflow.tasks",
    "get_run_logger": "fleetflow.engine.logs",
    "get_client": "fleetflow.client",
    "run_deployment": "fleetflow.deployments",
    "State": "fleetflow.states",
    "StateType": "fleetflow.states",
    "FleetflowError": "fleetflow.exceptions",
    "allow_failure": "fleetflow.engine.futures",
    "pause_flow_run": "fleetflow.engine.pause",
    "resume_flow_run": "fleetflow.engine.pause",
    "tags": "fleetflow.engine.context",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fleetflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
