"""Running flows and tasks in-process: states, retries, timeouts, futures, context, logs, results."""

from typing import Any as _Any

# Prefect's ``from prefect.engine import pause_flow_run, resume_flow_run``, imported on use.
_LAZY = {"pause_flow_run": "fleetflow.engine.pause", "resume_flow_run": "fleetflow.engine.pause"}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fleetflow.engine' has no attribute {name!r}")
